//! Building blocks shared by every model: leak-free convolutions and norms, the
//! residual block, the frozen feature networks behind the perceptual loss, the
//! transformer, the PointMLP that turns keypoints into tokens.

pub mod inception;
pub mod mobilenet;
pub mod norm;
pub mod perceptual;
pub mod point_mlp;
pub mod residual;
pub mod transformer;
pub mod two_stream;
pub mod weights;
