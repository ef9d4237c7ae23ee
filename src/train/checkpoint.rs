//! The trainable state (V_T, the output mapping and their Adam moments) and its checkpoint: the
//! state, the best predictor so far and the run's progress, written after every epoch so that
//! `--resume` continues an interrupted run.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::error::{Result, TrainError};
use super::objective::ValidationScore;
use crate::model::Theta;
use crate::predictor::{Head, Predictor, PredictorError, write_atomically};

/// The trainable state: V_T, the output mapping and their optimiser states.
pub(super) struct State {
    pub(super) v_t: Vec<f32>,
    pub(super) head: Head,
    pub(super) adam_v_t: Adam,
    /// One per parameter vector of the head, in [`Head::parameters`] order.
    pub(super) adam_head: Vec<Adam>,
    /// The running mean of V_T and the head over the averaged steps (`--average-last`); as
    /// many steps as [`CheckpointInfo::averaged_steps`] say, none at first.
    pub(super) average: Average,
}

/// The mean of the weights over the steps averaged so far.
#[derive(Clone)]
pub(super) struct Average {
    pub(super) v_t: Vec<f32>,
    pub(super) head: Head,
}

impl Average {
    /// Folds in the weights after the `count`-th averaged step (1-based): a running mean.
    pub(super) fn add(&mut self, v_t: &[f32], head: &Head, count: usize) {
        let weight = 1.0 / count as f32;
        let fold = |mean: &mut [f32], value: &[f32]| {
            for (m, v) in mean.iter_mut().zip(value) {
                *m += (v - *m) * weight;
            }
        };
        fold(&mut self.v_t, v_t);
        for (mean, (_, value, _)) in self.head.parameters_mut().into_iter().zip(head.parameters()) {
            fold(mean, value);
        }
    }
}

/// Progress kept across epochs, saved with the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CheckpointInfo {
    /// Epochs finished.
    pub(super) epochs_done: usize,
    pub(super) steps: usize,
    pub(super) best_epoch: usize,
    pub(super) best_score: ValidationScore,
    pub(super) bad_epochs: usize,
    pub(super) seconds: f64,
    /// Steps folded into [`State::average`].
    #[serde(default)]
    pub(super) averaged_steps: usize,
    /// The penalty of the output mapping's least-squares start (`--ridge-head`).
    #[serde(default)]
    pub(super) ridge_penalty: Option<f64>,
    /// Fingerprint of the training rows and settings: a checkpoint resumes only the same run.
    pub(super) run: String,
}

pub(super) const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub(super) const CHECKPOINT_INFO: &str = "checkpoint.json";
pub(super) const CHECKPOINT_BEST: &str = "checkpoint-best";

/// Whether `dir` holds a checkpoint to resume.
pub(super) fn has_checkpoint(dir: &Path) -> bool {
    dir.join(CHECKPOINT_INFO).is_file()
}

fn tensor(values: &[f32]) -> candle_core::Result<Tensor> {
    Tensor::new(values, &Device::Cpu)
}

/// Writes the state, the best predictor so far and the progress into `dir`.
pub(super) fn save_checkpoint(dir: &Path, state: &State, info: &CheckpointInfo, best: &Predictor) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    let checkpoint_error = |e: candle_core::Error| TrainError::Checkpoint {
        path: path.clone(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let best_dir = dir.join(CHECKPOINT_BEST);
    best.save(&best_dir)?;
    let mut named = vec![
        ("v_t".to_string(), state.v_t.as_slice()),
        ("adam.v_t.m".to_string(), &state.adam_v_t.m),
        ("adam.v_t.v".to_string(), &state.adam_v_t.v),
    ];
    for ((name, values, _), adam) in state.head.parameters().into_iter().zip(&state.adam_head) {
        named.push((name.to_string(), values));
        named.push((format!("adam.{name}.m"), &adam.m));
        named.push((format!("adam.{name}.v"), &adam.v));
    }
    let average_names: Vec<String> = average_names(&state.head);
    if info.averaged_steps > 0 {
        let values = std::iter::once(state.average.v_t.as_slice())
            .chain(state.average.head.parameters().into_iter().map(|(_, values, _)| values));
        named.extend(average_names.iter().cloned().zip(values));
    }
    let mut tensors = std::collections::HashMap::new();
    for (name, values) in named {
        tensors.insert(name, tensor(values).map_err(checkpoint_error)?);
    }
    let steps: Vec<u32> = std::iter::once(&state.adam_v_t)
        .chain(&state.adam_head)
        .map(|adam| adam.t)
        .collect();
    tensors.insert(
        "adam.t".into(),
        Tensor::new(steps, &Device::Cpu).map_err(checkpoint_error)?,
    );
    write_atomically(&path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(|e| PredictorError::Weights {
            path: tmp.to_path_buf(),
            message: e.to_string(),
        })
    })?;
    let info_path = dir.join(CHECKPOINT_INFO);
    let text = serde_json::to_string_pretty(info).map_err(|e| TrainError::Checkpoint {
        path: info_path.clone(),
        message: e.to_string(),
    })?;
    write_atomically(&info_path, |tmp| {
        std::fs::write(tmp, text).map_err(|source| PredictorError::Io {
            path: tmp.to_path_buf(),
            source,
        })
    })?;
    Ok(())
}

/// Reads the checkpoint in `dir`; it must come from the same run (data and settings).
pub(super) fn load_checkpoint(dir: &Path, run: &str, shape: &State) -> Result<(State, CheckpointInfo, Theta, Head)> {
    let info_path = dir.join(CHECKPOINT_INFO);
    let bad = |path: &Path, message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(&info_path)
        .map_err(|e| bad(&info_path, format!("{e}; nothing to resume (train without --resume)")))?;
    let info: CheckpointInfo = serde_json::from_str(&text).map_err(|e| bad(&info_path, e.to_string()))?;
    if info.run != run {
        return Err(bad(
            &info_path,
            "comes from another run (different data, limit or settings); train without --resume".into(),
        ));
    }
    let path = dir.join(CHECKPOINT_FILE);
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| bad(&path, e.to_string()))?;
    let get = |name: &str, len: usize| -> Result<Vec<f32>> {
        let values: Vec<f32> = tensors
            .get(name)
            .ok_or_else(|| bad(&path, format!("no tensor '{name}'")))?
            .to_vec1()
            .map_err(|e| bad(&path, e.to_string()))?;
        if values.len() != len {
            return Err(bad(
                &path,
                format!("'{name}' has {} values, expected {len}", values.len()),
            ));
        }
        Ok(values)
    };
    let t: Vec<u32> = tensors
        .get("adam.t")
        .ok_or_else(|| bad(&path, "no tensor 'adam.t'".into()))?
        .to_vec1()
        .map_err(|e| bad(&path, e.to_string()))?;
    if t.len() != 1 + shape.adam_head.len() {
        return Err(bad(
            &path,
            format!(
                "'adam.t' has {} values, expected {}",
                t.len(),
                1 + shape.adam_head.len()
            ),
        ));
    }
    let adam = |name: &str, len: usize, t: u32| -> Result<Adam> {
        Ok(Adam {
            m: get(&format!("adam.{name}.m"), len)?,
            v: get(&format!("adam.{name}.v"), len)?,
            t,
        })
    };
    let n_v_t = shape.v_t.len();
    let mut head = shape.head.clone();
    let mut adam_head = Vec::with_capacity(shape.adam_head.len());
    let names: Vec<&str> = shape.head.parameters().iter().map(|&(name, _, _)| name).collect();
    for ((params, name), &t) in head.parameters_mut().into_iter().zip(names).zip(&t[1..]) {
        *params = get(name, params.len())?;
        adam_head.push(adam(name, params.len(), t)?);
    }
    let mut average = shape.average.clone();
    if info.averaged_steps > 0 {
        let names = average_names(&shape.head);
        average.v_t = get(&names[0], n_v_t)?;
        for (params, name) in average.head.parameters_mut().into_iter().zip(&names[1..]) {
            *params = get(name, params.len())?;
        }
    }
    let state = State {
        v_t: get("v_t", n_v_t)?,
        adam_v_t: adam("v_t", n_v_t, t[0])?,
        adam_head,
        head,
        average,
    };
    let best = Predictor::load(&dir.join(CHECKPOINT_BEST))?;
    Ok((state, info, best.theta, best.head))
}

/// The checkpoint's names of the averaged V_T and head parameters.
fn average_names(head: &Head) -> Vec<String> {
    std::iter::once("average.v_t".to_string())
        .chain(head.parameters().iter().map(|(name, _, _)| format!("average.{name}")))
        .collect()
}

/// Removes the checkpoint from `dir` once its run is complete (nothing is left to resume).
pub(super) fn remove_checkpoint(dir: &Path) -> Result<()> {
    for file in [CHECKPOINT_FILE, CHECKPOINT_INFO] {
        match std::fs::remove_file(dir.join(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(checkpoint_io(&dir.join(file), e)),
            _ => {}
        }
    }
    match std::fs::remove_dir_all(dir.join(CHECKPOINT_BEST)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(checkpoint_io(&dir.join(CHECKPOINT_BEST), e)),
        _ => Ok(()),
    }
}

fn checkpoint_io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_is_the_mean_of_the_folded_weights() {
        let head_of = |value: f32| {
            let mut head = Head::with_hidden(2, 3, 4, || 0.5);
            head.parameters_mut().into_iter().for_each(|p| p.fill(value));
            head
        };
        let mut average = Average {
            v_t: vec![0.0; 2],
            head: head_of(0.0),
        };
        for (count, value) in [1.0f32, 2.0, 6.0].into_iter().enumerate() {
            average.add(&[value, -value], &head_of(value), count + 1);
        }
        assert_eq!(average.v_t, [3.0, -3.0]);
        let head = average.head.parameters();
        assert!(
            head.iter()
                .all(|(_, values, _)| values.iter().all(|&v| (v - 3.0).abs() < 1e-6))
        );
        assert_eq!(head.len(), 4, "the hidden layer's weights are averaged too");
    }
}
