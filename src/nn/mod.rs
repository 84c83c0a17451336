//! Building blocks shared by every model: leak-free convolutions and norms, the
//! residual block, the frozen feature networks behind the perceptual loss, the
//! transformer (with attention and layer norm fused for the CPU), the PointMLP that
//! turns keypoints into tokens.

pub mod fused;
pub mod inception;
pub mod mobilenet;
pub mod norm;
pub mod perceptual;
pub mod point_mlp;
pub mod residual;
pub mod transformer;
pub mod two_stream;
pub mod weights;
