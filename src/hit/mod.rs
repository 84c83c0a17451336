//! HiT (Zhao et al. 2022): a transformer GAN generator without convolutions, behind
//! click-to-sample.

pub mod augment;
pub mod blocks;
pub mod conv;
pub mod discriminator;
pub mod generator;
pub mod loss;
