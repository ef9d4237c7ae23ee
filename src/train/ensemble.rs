//! `r2dl train --ensemble N`: N members trained on the same rows (the same `--limit` subsample
//! and validation hold-out) with different seeds (initial output mapping, order, crops), saved as
//! one predictor folder — the first member in the folder itself, member i in `members/<i>` —
//! whose `predict_<name>` averages the members' outputs. Each member has its own Θ, so its own
//! encoder pass: an ensemble of N costs N times the inference time of one predictor.

use std::sync::atomic::AtomicBool;

use super::checkpoint::has_checkpoint;
use super::error::{Result, TrainError};
use super::evaluate::{decision_threshold, evaluate};
use super::trainer::{Datasets, Progress, TrainSpec, train, validation_rows};
use crate::model::{Readout, ReprogrammedModel};
use crate::predictor::{HyperParameters, MANIFEST_FILE, Member, Predictor};

/// Members of an ensemble at most.
pub const MAX_ENSEMBLE: usize = 32;

/// Trains `size` members (`size` = 1: one predictor, as [`train`]) and saves them as one
/// predictor in `spec.out`; reports [`Progress::Member`] before each member's own progress.
/// Member i is trained with seed `seed + i − 1` on the rows of seed `seed`. Its metrics are the
/// ensemble's; the first member's own are kept under `<split> (member 1)`, and every further
/// member's in its own manifest. With `spec.resume`, a member with a checkpoint resumes it and a
/// member already finished with these settings is not trained again.
pub fn train_ensemble(
    model: &ReprogrammedModel,
    data: &Datasets,
    spec: &TrainSpec,
    size: usize,
    report: &mut dyn FnMut(Progress),
    stop: &AtomicBool,
) -> Result<Predictor> {
    if !(1..=MAX_ENSEMBLE).contains(&size) {
        return Err(TrainError::Settings(format!(
            "--ensemble must be between 1 and {MAX_ENSEMBLE}, not {size}"
        )));
    }
    if size == 1 {
        return train(model, data, spec, report, stop);
    }
    let mut members = Vec::with_capacity(size);
    for index in 1..=size {
        report(Progress::Member { index, members: size });
        let member = member_spec(spec, index);
        let resume = spec.resume && has_checkpoint(&member.out);
        let finished = (spec.resume && !resume)
            .then(|| finished_member(model, data, &member))
            .flatten();
        let predictor = match finished {
            Some(predictor) => predictor,
            None => train(model, data, &TrainSpec { resume, ..member }, report, stop)?,
        };
        members.push(predictor);
    }
    let mut members = members.into_iter();
    let mut ensemble = members
        .next()
        .ok_or_else(|| TrainError::Settings("an ensemble needs members".into()))?;
    ensemble.further_members = members.collect();
    let manifest = &mut ensemble.manifest;
    manifest.metrics = std::mem::take(&mut manifest.metrics)
        .into_iter()
        .map(|(split, metrics)| (format!("{split} (member 1)"), metrics))
        .collect();
    let valid = validation_rows(data, spec)?;
    if !valid.is_empty() {
        ensemble.manifest.decision_threshold = decision_threshold(&ensemble, model, &valid)?;
        let metrics = evaluate(&ensemble, model, &valid)?;
        ensemble.manifest.metrics.insert("valid".into(), metrics);
    }
    if let Some(test) = &data.test {
        let metrics = evaluate(&ensemble, model, test)?;
        ensemble.manifest.metrics.insert("test".into(), metrics);
    }
    ensemble.save(&spec.out)?;
    Ok(ensemble)
}

/// What member `index` (1-based) of the ensemble `spec` trains: its seed, the ensemble's rows,
/// its folder.
fn member_spec(spec: &TrainSpec, index: usize) -> TrainSpec {
    let seed = spec.hyper.seed;
    TrainSpec {
        hyper: HyperParameters {
            seed: seed.wrapping_add(index as u64 - 1),
            split_seed: (index > 1).then_some(spec.hyper.split_seed()),
            ..spec.hyper.clone()
        },
        out: if index == 1 {
            spec.out.clone()
        } else {
            spec.out.join(Member::dir_of(index))
        },
        ..spec.clone()
    }
}

/// The single predictor already in `member.out` when it was trained from the same rows with
/// `member`'s settings (a finished ensemble's first member is trained again: its manifest holds
/// the ensemble's metrics).
fn finished_member(model: &ReprogrammedModel, data: &Datasets, member: &TrainSpec) -> Option<Predictor> {
    if !member.out.join(MANIFEST_FILE).is_file() {
        return None;
    }
    let predictor = Predictor::load(&member.out).ok()?;
    let manifest = &predictor.manifest;
    // the manifest stores the readout as training normalised it
    let layers = model.encoder().config().num_hidden_layers;
    let readout = match member.hyper.readout_layers.as_slice() {
        [] => Vec::new(),
        given => Readout::of_layers(given, layers).ok()?.stored().to_vec(),
    };
    let settings = HyperParameters {
        readout_layers: readout,
        ..member.hyper.clone()
    };
    let same = manifest.members.is_empty()
        && manifest.name == member.name
        && manifest.training_data.sha256 == data.train.fingerprint()
        && manifest.training_data.limit == member.limit
        && manifest.hyper_parameters == settings;
    same.then_some(predictor)
}
