//! ImageBART (Esser et al. 2021): multinomial diffusion over token grids, reversed by
//! a short chain of transformers; its masked forward-backward process refines an edit
//! step by step (App. A.3).

pub mod model;
pub mod sample;
pub mod schedule;
