//! Tessera: a desktop image editor whose small generative models regenerate only the
//! masked part of a picture. See DESIGN.md for the architecture: the editor and the
//! command line both talk to [`engine::Engine`]; models live in their own modules.

pub mod allocator;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod distribution;
pub mod editor;
pub mod engine;
pub mod evaluate;
pub mod hit;
pub mod ilat;
pub mod imagebart;
pub mod metrics;
pub mod nn;
pub mod paths;
pub mod region;
pub mod report;
pub mod run;
pub mod store;
pub mod training;
pub mod vqgan;
pub mod worker;
