//! Checkpoints of a VQGAN run: the generator, the discriminator and both optimisers'
//! moments, written together and read back on resume; or, on a machine with only the
//! committed model, a warm start from its weights and progress.

use std::path::Path;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::store::ModuleRecord;

use super::Vqgan;
use super::train::VqganTrainingConfig;
use crate::store;
use crate::training::{Progress, Run, TrainError};

/// The state that a checkpoint holds.
pub(super) struct State {
    pub model: Vqgan,
    pub disc: super::Discriminator,
    pub optim_g: burn::optim::ModuleOptimizer,
    pub optim_d: burn::optim::ModuleOptimizer,
}

pub(super) fn fresh_state(config: &VqganTrainingConfig, device: &Device) -> State {
    device.seed(config.seed);
    State {
        model: config.model.init(device),
        disc: config.discriminator.init(device),
        optim_g: AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
        optim_d: AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
    }
}

/// Starts from an exported model: its weights and the progress file written beside it.
pub(super) fn warm_start(
    config: &VqganTrainingConfig,
    dir: &Path,
    device: &Device,
) -> Result<(State, Progress), TrainError> {
    let (model, model_config) = Vqgan::load(dir, "vqgan", device)?;
    if model_config.to_string() != config.model.to_string() {
        return Err(store::StoreError::Mismatch {
            weights: dir.join("vqgan.bpk"),
            config: dir.join("vqgan.json"),
            reason: "the training configuration describes another architecture".into(),
        }
        .into());
    }
    let progress = crate::training::read_progress(dir, "vqgan");
    tracing::info!("warm start from {} at {:?}", dir.display(), progress);
    Ok((
        State {
            model,
            ..fresh_state(config, device)
        },
        progress,
    ))
}

pub(super) fn load_state(
    config: &VqganTrainingConfig,
    dir: &Path,
    device: &Device,
) -> Result<State, TrainError> {
    let fresh = fresh_state(config, device);
    let part = |name: &str| dir.join(format!("{name}.bpk"));
    Ok(State {
        model: store::load_weights(fresh.model, &part("model"))?,
        disc: store::load_weights(fresh.disc, &part("disc"))?,
        optim_g: fresh
            .optim_g
            .load_record(store::load_optimizer(&part("optim_g"))?),
        optim_d: fresh
            .optim_d
            .load_record(store::load_optimizer(&part("optim_d"))?),
    })
}

pub(super) fn save_state(
    state: &State,
    config: &VqganTrainingConfig,
    run: &Run,
    step: usize,
) -> Result<(), TrainError> {
    run.checkpoint(step, |dir| {
        let record = |module: ModuleRecord, name: &str| {
            store::save_record(&dir.join(format!("{name}.bpk")), module)
        };
        record(state.model.clone().into_record(), "model")?;
        record(state.disc.clone().into_record(), "disc")?;
        for (optim, name) in [(&state.optim_g, "optim_g"), (&state.optim_d, "optim_d")] {
            store::save_optimizer(optim, &dir.join(format!("{name}.bpk")))?;
        }
        Ok(())
    })?;
    // The exported generator alone, with its progress, ready to copy into models/.
    store::save_model(run.dir(), "vqgan", &config.model, state.model.valid())?;
    run.write_progress("vqgan", step)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vqgan::{DiscriminatorConfig, VqganConfig};

    #[test]
    fn warm_start_takes_weights_and_progress_and_refuses_another_architecture() {
        let device = Device::flex();
        let model = VqganConfig::new()
            .with_widths(vec![8, 16, 16])
            .with_codebook_size(32)
            .with_code_dim(8);
        let config = VqganTrainingConfig::new(model.clone(), DiscriminatorConfig::new());
        let dir = std::env::temp_dir().join(format!("tessera-vqgan-warm-{}", std::process::id()));
        let trained = model.init(&device);
        store::save_model(&dir, "vqgan", &model, trained.clone()).expect("save");
        std::fs::write(
            dir.join("vqgan.progress.json"),
            r#"{"step":1234,"seconds":99.0}"#,
        )
        .expect("progress");
        let (state, progress) = warm_start(&config, &dir, &device).expect("warm start");
        assert_eq!(progress.step, 1234);
        let images = Tensor::<4>::ones([1, 3, 64, 64], &device);
        assert_eq!(
            state.model.forward(images.clone(), None).images.into_data(),
            trained.forward(images, None).images.into_data()
        );
        let other = VqganTrainingConfig::new(model.with_code_dim(4), DiscriminatorConfig::new());
        assert!(warm_start(&other, &dir, &device).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
