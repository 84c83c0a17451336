//! Building blocks shared by every model: leak-free convolutions and norms, the
//! residual block, the frozen feature networks behind the perceptual loss.

pub mod mobilenet;
pub mod norm;
pub mod perceptual;
pub mod residual;
pub mod transformer;
pub mod two_stream;
