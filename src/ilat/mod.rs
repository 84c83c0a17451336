//! iLAT: local autoregressive regeneration of masked tokens (Cao et al. 2021, §3.2).
//!
//! Only the masked tokens of an image are generated, in raster order, while every
//! kept token is seen at once as global context; the local-autoregressive attention
//! mask makes that possible without letting a prediction see what it predicts.

pub mod mask;
pub mod model;
pub mod sample;
pub mod train;
pub mod training_data;
