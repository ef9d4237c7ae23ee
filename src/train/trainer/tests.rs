//! Tests of the training loop on tiny random-weight models.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::Device;

use super::*;
use crate::model::InvalidResidue;
use crate::model::testing::write_tiny_bert;

/// `n` rows of 4–8 residues: row `i` draws from `alphabet(i)` and is labelled `label(i, counts)`
/// (`counts`: how often each of the alphabet's four residues was drawn).
fn synthetic_rows(
    n: usize,
    seed: u64,
    alphabet: impl Fn(usize) -> &'static [u8; 4],
    label: impl Fn(usize, &[usize; 4]) -> String,
) -> LabelledRows {
    let mut rng = Rng::new(seed, 9);
    let mut rows = LabelledRows {
        source: format!("synthetic-{seed}"),
        ..Default::default()
    };
    for i in 0..n {
        let mut counts = [0; 4];
        let sequence: String = (0..4 + rng.below(5))
            .map(|_| {
                let r = rng.below(4);
                counts[r] += 1;
                alphabet(i)[r] as char
            })
            .collect();
        rows.labels.push(label(i, &counts));
        rows.sequences.push(sequence);
    }
    rows
}

/// Separable rows: basic residues are `pos`, acidic ones `neg`.
fn rows(n: usize, seed: u64) -> LabelledRows {
    const GROUPS: [(&[u8; 4], &str); 2] = [(b"KRHA", "pos"), (b"DESA", "neg")];
    synthetic_rows(n, seed, |i| GROUPS[i % 2].0, |i, _| GROUPS[i % 2].1.into())
}

/// 120 training and 60 test rows of the two classes of [`rows`], no validation file.
fn separable_classes() -> Datasets {
    Datasets {
        train: rows(120, 1),
        valid: None,
        test: Some(rows(60, 2)),
    }
}

fn spec(out: &Path) -> TrainSpec {
    TrainSpec {
        name: "tiny".into(),
        kind: None,
        positive: None,
        limit: None,
        hyper: HyperParameters {
            epochs: 4,
            batch_size: 8,
            lr_theta: 0.05,
            lr_head: 0.05,
            k: 3,
            recode_every: 2,
            patience: 10,
            ..Default::default()
        },
        out: out.to_path_buf(),
        resume: false,
    }
}

#[test]
fn training_learns_is_deterministic_sparse_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|_| {});
}

#[test]
fn training_with_a_hidden_layer_learns_is_deterministic_sparse_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| hyper.head_hidden = 8);
}

#[test]
fn training_on_several_layers_states_learns_is_deterministic_sparse_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| hyper.readout_layers = vec![0, 1, 2]);
}

#[test]
fn training_on_segments_of_the_proteins_learns_is_deterministic_sparse_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| {
        (hyper.readout_layers, hyper.segments) = (vec![0, 2], 3);
    });
}

#[test]
fn training_without_holdout_on_a_cosine_schedule_with_averaging_learns_is_deterministic_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| {
        hyper.head_hidden = 8;
        hyper.valid_fraction = 0.0;
        hyper.schedule = crate::predictor::Schedule::Cosine;
        hyper.average_last = 0.6;
    });
}

#[test]
fn training_with_outputs_averaged_over_residues_learns_is_deterministic_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| {
        hyper.head_hidden = 8;
        hyper.pool = crate::predictor::Pool::Outputs;
    });
}

#[test]
fn training_with_outputs_summed_over_residues_learns_is_deterministic_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| {
        hyper.head_hidden = 8;
        hyper.pool = crate::predictor::Pool::Sum;
        // a sum over residues moves the logits length-fold faster than a mean
        hyper.lr_head /= 10.0;
    });
}

#[test]
fn training_with_standardised_inputs_learns_is_deterministic_and_resumable() {
    learns_deterministically_sparsely_and_resumably(|hyper| {
        hyper.standardise = true;
    });
    learns_deterministically_sparsely_and_resumably(|hyper| {
        hyper.head_hidden = 8;
        hyper.pool = crate::predictor::Pool::Sum;
        hyper.standardise = true;
    });
}

#[test]
fn outputs_averaged_over_residues_are_refused_for_per_residue_tasks_and_empty_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = tempfile::tempdir().unwrap();
    let mut spec = spec(out.path());
    spec.hyper.pool = crate::predictor::Pool::Outputs;
    let mut train_rows = rows(10, 1);
    train_rows.sequences[4] = String::new();
    let data = Datasets {
        train: train_rows,
        valid: None,
        test: None,
    };
    let error = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("record 5") && error.contains("empty"), "{error}");
    spec.kind = Some(Kind::Residue);
    let error = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--pool outputs") && error.contains("per-residue"),
        "{error}"
    );
}

fn learns_deterministically_sparsely_and_resumably(settings: impl Fn(&mut HyperParameters)) {
    let spec = |out: &Path| {
        let mut spec = spec(out);
        settings(&mut spec.hyper);
        spec
    };
    let hyper = spec(Path::new("")).hyper;
    let (head_hidden, readout) = (hyper.head_hidden, hyper.readout_layers.as_slice());
    let holdout = hyper.valid_fraction > 0.0;
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), "", 3).unwrap();
    let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap();
    let data = Datasets {
        train: rows(64, 1),
        valid: None,
        test: Some(rows(40, 2)),
    };
    let out = tempfile::tempdir().unwrap();
    let never = AtomicBool::new(false);
    let mut epochs = Vec::new();
    let first = train(&model, &data, &spec(out.path()), &mut |p| epochs.push(p), &never).unwrap();
    let m = &first.manifest;
    assert_eq!((m.kind, m.positive_label.as_deref()), (Kind::Binary, Some("pos")));
    if holdout {
        assert_eq!((m.training_data.train_rows, m.training_data.valid_rows), (58, 6));
        assert!(m.metrics.contains_key("valid") && m.decision_threshold.is_some());
    } else {
        // every row trains; the last epoch's (averaged) weights are kept, with no validation
        assert_eq!((m.training_data.train_rows, m.training_data.valid_rows), (64, 0));
        assert!(!m.metrics.contains_key("valid") && m.decision_threshold.is_none());
        assert_eq!((m.training.best_epoch, m.training.epochs_run), (4, 4));
        assert!(
            epochs
                .iter()
                .all(|p| !matches!(p, Progress::Epoch { score: Some(_), .. }))
        );
    }
    assert!(m.metrics["test"]["auroc"] > 0.9, "{:?}", m.metrics);
    assert!(first.theta.rows().iter().all(|r| r.indices.len() <= 3));
    assert!(first.theta != Theta::one_hot(model.english_tokens()), "Θ moved");
    assert_eq!(first.head.hidden_units(), head_hidden);
    assert_eq!(m.hyper_parameters.readout_layers, readout);
    assert_eq!(m.hyper_parameters.pool, hyper.pool);
    assert_eq!(m.hyper_parameters.standardise, hyper.standardise);
    assert_eq!(first.head.input.is_some(), hyper.standardise);
    assert_eq!(m.hyper_parameters.segments, hyper.segments);
    assert_eq!(first.head.dim(), hyper.segments * readout.len().max(1) * model.dim());
    assert_eq!(epochs.iter().filter(|p| matches!(p, Progress::Epoch { .. })).count(), 4);
    // what was saved loads back as the same predictor, with no checkpoint left behind
    let loaded = Predictor::load(out.path()).unwrap();
    assert_eq!((&loaded.theta, &loaded.head), (&first.theta, &first.head));
    let mut manifest = loaded.manifest.clone();
    for (split, metrics) in &first.manifest.metrics {
        for (name, value) in metrics {
            assert!((manifest.metrics[split][name] - value).abs() < 1e-12, "{split} {name}");
        }
    }
    // serde_json's default float parser may differ in the last bit: floats compare with a tolerance
    assert!((manifest.training.seconds - first.manifest.training.seconds).abs() < 1e-9);
    match (manifest.decision_threshold, first.manifest.decision_threshold) {
        (Some(read), Some(trained)) => assert!((read - trained).abs() < 1e-12),
        (read, trained) => assert_eq!(read, trained),
    }
    manifest.metrics = first.manifest.metrics.clone();
    manifest.training.seconds = first.manifest.training.seconds;
    manifest.decision_threshold = first.manifest.decision_threshold;
    // the saved manifest records its weights file's SHA-256 (the file exists only once saved)
    let weights = out.path().join(crate::predictor::WEIGHTS_FILE);
    assert_eq!(
        manifest.predictor_sha256.take(),
        Some(crate::model::sha256_file(&weights).unwrap())
    );
    assert_eq!(manifest, first.manifest);
    assert!(!out.path().join(super::super::checkpoint::CHECKPOINT_FILE).exists());
    #[cfg(unix)]
    {
        // the folder's files have the usual permissions (safetensors alone would make them private)
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            let path = out.path().join(name);
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        std::fs::write(out.path().join("usual"), "").unwrap();
        assert_eq!(mode("predictor.safetensors"), mode("usual"));
        assert_eq!(mode("manifest.json"), mode("usual"));
        std::fs::remove_file(out.path().join("usual")).unwrap();
    }

    // the same seed gives the same predictor
    let again = train(&model, &data, &spec(out.path()), &mut |_| {}, &never).unwrap();
    assert_eq!((&again.theta, &again.head), (&first.theta, &first.head));

    // interrupted after epoch 2, resumed: the same predictor as one uninterrupted run
    // a run stopped as Ctrl-C does, once epoch `after` is checkpointed
    let interrupted_after = |after: usize| {
        let stop = AtomicBool::new(false);
        let on_epoch = &mut |p: Progress| {
            if matches!(p, Progress::Epoch { epoch, .. } if epoch == after) {
                stop.store(true, Ordering::Relaxed);
            }
        };
        train(&model, &data, &spec(out.path()), on_epoch, &stop)
    };
    let interrupted = interrupted_after(2);
    assert!(matches!(interrupted, Err(TrainError::Interrupted { .. })));
    assert!(out.path().join(super::super::checkpoint::CHECKPOINT_FILE).exists());
    let mut resumed_spec = spec(out.path());
    resumed_spec.resume = true;
    let mut starts = Vec::new();
    let resumed = train(&model, &data, &resumed_spec, &mut |p| starts.push(p), &never).unwrap();
    assert!(
        matches!(starts[0], Progress::Start { first_epoch: 3, .. }),
        "{:?}",
        starts[0]
    );
    assert_eq!((&resumed.theta, &resumed.head), (&first.theta, &first.head));

    // a checkpoint of other settings does not resume
    let interrupted = interrupted_after(1);
    assert!(matches!(interrupted, Err(TrainError::Interrupted { .. })));
    let mut other = spec(out.path());
    other.hyper.seed = 99;
    other.resume = true;
    let error = train(&model, &data, &other, &mut |_| {}, &never)
        .unwrap_err()
        .to_string();
    assert!(error.contains("another run"), "{error}");

    // a manifest naming a layer the base model lacks is refused before anything runs, naming it
    if !readout.is_empty() {
        let path = out.path().join(crate::predictor::MANIFEST_FILE);
        let mut manifest = Manifest::read(&path).unwrap();
        *manifest.hyper_parameters.readout_layers.last_mut().unwrap() = 5;
        std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
        let edited = Predictor::load(out.path()).unwrap();
        let error = edited.check_base_model(&model).unwrap_err().to_string();
        assert!(error.contains("'tiny'") && error.contains("not 5"), "{error}");
    }
}

fn tiny_model(dir: &Path) -> ReprogrammedModel {
    write_tiny_bert(dir, "", 3).unwrap();
    ReprogrammedModel::load(dir, &Device::Cpu).unwrap()
}

/// A regression over K/R/D/E rows: 96 training and 60 test rows labelled 10 + 5 × the share of K
/// and R, so that standardising the labels and back are exercised.
fn composition_scores() -> Datasets {
    let label = |c: &[usize; 4]| {
        let n: usize = c.iter().sum();
        format!("{}", 10.0 + 5.0 * (c[0] + c[1]) as f64 / n as f64)
    };
    Datasets {
        train: synthetic_rows(96, 1, |_| b"KRDE", |_, c| label(c)),
        valid: None,
        test: Some(synthetic_rows(60, 2, |_| b"KRDE", |_, c| label(c))),
    }
}

#[test]
fn regression_learns_a_composition_score_in_label_units() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = composition_scores();
    let out = tempfile::tempdir().unwrap();
    let mut spec = spec(out.path());
    spec.hyper.epochs = 8;
    let predictor = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let m = &predictor.manifest;
    assert_eq!(m.kind, Kind::Regression);
    let test = &m.metrics["test"];
    assert!(test["spearman"] > 0.6, "{test:?}");
    // predictions are in label units, not standardised ones
    assert!(test["rmse"] < 1.5, "{test:?}");
    let reprogrammed = predictor.model(&model).unwrap();
    let values = predictor
        .predict(&reprogrammed, [Some("KRKRKR"), Some("DEDEDE")], InvalidResidue::Error)
        .unwrap()
        .values;
    assert!(values[0] > values[1] && (9.0..16.0).contains(&values[1]), "{values:?}");
}

#[test]
fn multiclass_learns_three_labels() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // each row is drawn from one group's residues (with the neutral A)
    const GROUPS: [(&[u8; 4], &str); 3] = [(b"KRHA", "basic"), (b"DEDA", "acidic"), (b"LIVA", "hydrophobic")];
    let rows = |n, seed| synthetic_rows(n, seed, |i| GROUPS[i % 3].0, |i, _| GROUPS[i % 3].1.into());
    let data = Datasets {
        train: rows(120, 1),
        valid: None,
        test: Some(rows(60, 2)),
    };
    let out = tempfile::tempdir().unwrap();
    let mut spec = spec(out.path());
    spec.hyper.epochs = 8;
    let predictor = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let m = &predictor.manifest;
    assert_eq!((m.kind, m.positive_label.as_deref()), (Kind::Multiclass, None));
    assert_eq!(m.labels, ["acidic", "basic", "hydrophobic"]);
    let test = &m.metrics["test"];
    assert!(test["accuracy"] > 0.8, "{test:?}");
    let loaded = Predictor::load(out.path()).unwrap();
    assert_eq!(loaded.manifest.labels, m.labels);
}

#[test]
fn bad_rows_name_their_record() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), "", 3).unwrap();
    let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap();
    let mut train_rows = rows(10, 1);
    train_rows.sequences[6] = "MK1T".into();
    let data = Datasets {
        train: train_rows,
        valid: Some(rows(4, 2)),
        test: None,
    };
    let out = tempfile::tempdir().unwrap();
    let error = train(&model, &data, &spec(out.path()), &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("record 7") && error.contains("'1'") && error.contains("position 3"),
        "{error}"
    );
}

#[test]
fn an_ensemble_trains_members_on_the_same_rows_averages_them_and_resumes() {
    use crate::predictor::{ENSEMBLE_FORMAT, Predictions};
    use crate::train::train_ensemble;
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = Datasets {
        train: rows(64, 1),
        valid: None,
        test: Some(rows(40, 2)),
    };
    let never = AtomicBool::new(false);
    let out = tempfile::tempdir().unwrap();
    let mut progress = Vec::new();
    let ensemble = train_ensemble(&model, &data, &spec(out.path()), 3, &mut |p| progress.push(p), &never).unwrap();
    let announced: Vec<(usize, usize)> = progress
        .iter()
        .filter_map(|p| match *p {
            Progress::Member { index, members } => Some((index, members)),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [(1, 3), (2, 3), (3, 3)]);
    assert_eq!(
        progress.iter().filter(|p| matches!(p, Progress::Start { .. })).count(),
        3
    );

    // the first member is the single predictor of the same seed; the others differ in seed only:
    // the same training and validation rows
    let single_out = tempfile::tempdir().unwrap();
    let single = train(&model, &data, &spec(single_out.path()), &mut |_| {}, &never).unwrap();
    assert_eq!((&ensemble.theta, &ensemble.head), (&single.theta, &single.head));
    let members: Vec<&Predictor> = ensemble.members().collect();
    assert_eq!(members.len(), 3);
    for (i, member) in members.iter().enumerate() {
        let (hyper, rows) = (&member.manifest.hyper_parameters, &member.manifest.training_data);
        assert_eq!((hyper.seed, hyper.split_seed()), (1 + i as u64, 1));
        assert_eq!((rows.train_rows, rows.valid_rows), (58, 6));
        assert_eq!(rows.valid_source, single.manifest.training_data.valid_source);
    }
    assert!(members[1].head != members[0].head && members[2].head != members[1].head);

    // its predictions are the mean of its members'
    let sequences = [Some("KRKRAA"), Some("DEDESA"), None];
    let averaged = ensemble
        .predict_averaged(&model, &sequences, InvalidResidue::Error)
        .unwrap();
    let each: Vec<Predictions> = members
        .iter()
        .map(|m| {
            m.predict(&m.model(&model).unwrap(), sequences, InvalidResidue::Error)
                .unwrap()
        })
        .collect();
    for (i, value) in averaged.values.iter().enumerate() {
        let mean = each.iter().map(|p| p.values[i]).sum::<f32>() / 3.0;
        assert!((value - mean).abs() < 1e-6, "output {i}: {value} vs {mean}");
    }
    assert_eq!(averaged.valid, [true, true, false]);

    // its metrics are the ensemble's; the first member's own are kept beside them
    let m = &ensemble.manifest;
    let test = evaluate(&ensemble, &model, data.test.as_ref().unwrap()).unwrap();
    assert!((m.metrics["test"]["auroc"] - test["auroc"]).abs() < 1e-12);
    assert!((m.metrics["test (member 1)"]["auroc"] - single.manifest.metrics["test"]["auroc"]).abs() < 1e-12);
    assert!(m.metrics.contains_key("valid") && m.decision_threshold.is_some());

    // saved as one folder: the first member in it, the others under members/
    let loaded = Predictor::load(out.path()).unwrap();
    assert_eq!(loaded.manifest.format, ENSEMBLE_FORMAT);
    let dirs: Vec<&str> = loaded.manifest.members.iter().map(|m| m.dir.as_str()).collect();
    assert_eq!(dirs, ["members/2", "members/3"]);
    for (read, trained) in loaded.members().zip(ensemble.members()) {
        assert_eq!((&read.theta, &read.head), (&trained.theta, &trained.head));
    }

    // interrupted in the third member's second epoch, resumed: the finished members are not
    // trained again, the third resumes from its checkpoint, and the ensemble is the same
    let again = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let mut member = 0;
    let interrupted = train_ensemble(
        &model,
        &data,
        &spec(again.path()),
        3,
        &mut |p| match p {
            Progress::Member { index, .. } => member = index,
            Progress::Epoch { epoch: 1, .. } if member == 3 => stop.store(true, Ordering::Relaxed),
            _ => {}
        },
        &stop,
    );
    assert!(
        matches!(interrupted, Err(TrainError::Interrupted { .. })),
        "{interrupted:?}"
    );
    let mut resumed_spec = spec(again.path());
    resumed_spec.resume = true;
    let mut progress = Vec::new();
    let resumed = train_ensemble(&model, &data, &resumed_spec, 3, &mut |p| progress.push(p), &never).unwrap();
    let starts: Vec<&Progress> = progress
        .iter()
        .filter(|p| matches!(p, Progress::Start { .. }))
        .collect();
    assert!(
        matches!(starts.as_slice(), [Progress::Start { first_epoch: 2, .. }]),
        "{starts:?}"
    );
    for (read, trained) in resumed.members().zip(ensemble.members()) {
        assert_eq!((&read.theta, &read.head), (&trained.theta, &trained.head));
    }

    // an ensemble of one is a single predictor; sizes out of range are refused
    let error = train_ensemble(&model, &data, &spec(again.path()), 0, &mut |_| {}, &never)
        .unwrap_err()
        .to_string();
    assert!(error.contains("--ensemble must be between 1"), "{error}");
}

#[test]
fn a_ridge_fitted_output_mapping_learns_without_epochs_and_is_kept_unless_an_epoch_beats_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = composition_scores();
    let never = AtomicBool::new(false);
    let out = tempfile::tempdir().unwrap();
    let mut fitted_only = spec(out.path());
    (fitted_only.hyper.ridge_head, fitted_only.hyper.epochs) = (true, 0);
    let mut progress = Vec::new();
    let predictor = train(&model, &data, &fitted_only, &mut |p| progress.push(p), &never).unwrap();
    let m = &predictor.manifest;
    assert_eq!(
        (m.training.epochs_run, m.training.best_epoch, m.training.steps),
        (0, 0, 0)
    );
    let penalty = m.training.ridge_penalty.expect("the penalty is recorded");
    assert!(ridge::PENALTIES.contains(&penalty));
    let fitted_score = progress
        .iter()
        .find_map(|p| match p {
            Progress::HeadFitted { score, penalty: p, .. } if *p == penalty => *score,
            _ => None,
        })
        .expect("the fit is reported");
    // the fit alone, with Θ untrained, ranks the test rows and predicts in label units better
    // than the mean label does (a mapping of zeros: R² ≤ 0)
    let test = &m.metrics["test"];
    assert!(
        test["spearman"] > 0.3 && test["r2"] > 0.1 && test["rmse"] < 1.5,
        "{test:?}"
    );
    assert_eq!(predictor.theta, Theta::one_hot(model.english_tokens()));
    let reprogrammed = predictor.model(&model).unwrap();
    let values = predictor
        .predict(&reprogrammed, [Some("KRKRKR"), Some("DEDEDE")], InvalidResidue::Error)
        .unwrap()
        .values;
    assert!(values[0] > values[1], "{values:?}");
    // the saved predictor is the fitted one, and says so
    let loaded = Predictor::load(out.path()).unwrap();
    assert_eq!(loaded.head, predictor.head);
    assert!(loaded.manifest.hyper_parameters.ridge_head);

    // epochs after the fit start from it; an epoch replaces it only with a better validation score
    let out = tempfile::tempdir().unwrap();
    let mut then_trained = spec(out.path());
    (then_trained.hyper.ridge_head, then_trained.hyper.epochs) = (true, 2);
    let mut scores = Vec::new();
    let trained = train(&model, &data, &then_trained, &mut |p| scores.push(p), &never).unwrap();
    let best = match scores.last() {
        Some(Progress::Epoch { best: Some(best), .. }) => *best,
        other => panic!("{other:?}"),
    };
    assert!(!fitted_score.beats(&best), "{fitted_score:?} beats the kept {best:?}");
    assert_eq!(trained.manifest.training.ridge_penalty, Some(penalty));

    // what a ridge fit cannot do is refused before anything runs, naming the option
    let refused = |edit: &dyn Fn(&mut TrainSpec), data: &Datasets| {
        let out = tempfile::tempdir().unwrap();
        let mut s = spec(out.path());
        s.hyper.ridge_head = true;
        edit(&mut s);
        train(&model, data, &s, &mut |_| {}, &never).unwrap_err().to_string()
    };
    assert!(refused(&|s| s.hyper.head_hidden = 8, &data).contains("--head-hidden"));
    assert!(refused(&|s| s.hyper.pool = crate::predictor::Pool::Sum, &data).contains("--pool"));
    assert!(refused(&|s| s.hyper.valid_fraction = 0.0, &data).contains("validation rows"));
    let error = refused(&|s| (s.hyper.ridge_head, s.hyper.epochs) = (false, 0), &data);
    assert!(error.contains("--epochs must be between 1"), "{error}");
}

#[test]
fn a_ridge_fitted_output_mapping_separates_classes_with_probabilities_that_mean_something() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = separable_classes();
    let out = tempfile::tempdir().unwrap();
    let mut fitted = spec(out.path());
    (fitted.hyper.ridge_head, fitted.hyper.epochs) = (true, 0);
    let predictor = train(&model, &data, &fitted, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let test = &predictor.manifest.metrics["test"];
    assert!(test["auroc"] > 0.8 && test["accuracy"] > 0.75, "{test:?}");
    // the fit of one-hot labels is scaled into logits: the probabilities are not all near ½
    // (an unscaled fit's scores differ by about 1 at most: probabilities within 0.27 … 0.73),
    // and their log loss beats a coin's (0.69)
    assert!(test["log_loss"] < 0.6, "{test:?}");
    let reprogrammed = predictor.model(&model).unwrap();
    let p = predictor
        .predict(&reprogrammed, [Some("KRHKRH"), Some("DESDES")], InvalidResidue::Error)
        .unwrap()
        .values;
    let positive = predictor.manifest.positive_index().unwrap();
    assert!(p[positive] > 0.8 && p[2 + positive] < 0.3, "{p:?}");
}

#[test]
fn a_cross_validated_ridge_fit_needs_no_validation_rows_and_its_folds_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = separable_classes();
    let never = AtomicBool::new(false);
    let out = tempfile::tempdir().unwrap();
    let mut folded = spec(out.path());
    (folded.hyper.ridge_head, folded.hyper.epochs) = (true, 0);
    (folded.hyper.ridge_folds, folded.hyper.valid_fraction) = (5, 0.0);
    let mut progress = Vec::new();
    let predictor = train(&model, &data, &folded, &mut |p| progress.push(p), &never).unwrap();
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::HeadFitted { score: None, .. })),
        "the fit is reported without a validation score"
    );
    let m = &predictor.manifest;
    assert_eq!(m.training_data.train_rows, 120, "every row fits");
    assert!(!m.metrics.contains_key("valid"));
    assert_eq!(m.hyper_parameters.ridge_folds, 5);
    assert!(m.training.ridge_penalty.is_some_and(|p| p > 0.0));
    let test = &m.metrics["test"];
    assert!(test["auroc"] > 0.8 && test["accuracy"] > 0.75, "{test:?}");
    // scaled into logits on the out-of-fold scores: probabilities that mean something
    assert!(test["log_loss"] < 0.6, "{test:?}");
    assert_eq!(
        Predictor::load(out.path())
            .unwrap()
            .manifest
            .hyper_parameters
            .ridge_folds,
        5
    );

    let refused = |edit: &dyn Fn(&mut TrainSpec)| {
        let out = tempfile::tempdir().unwrap();
        let mut s = spec(out.path());
        (s.hyper.ridge_head, s.hyper.epochs, s.hyper.ridge_folds) = (true, 0, 5);
        edit(&mut s);
        train(&model, &data, &s, &mut |_| {}, &never).unwrap_err().to_string()
    };
    let error = refused(&|s| s.hyper.ridge_folds = 1);
    assert!(
        error.contains("--ridge-folds must be 0") && error.contains("not 1"),
        "{error}"
    );
    assert!(refused(&|s| s.hyper.ridge_folds = 21).contains("not 21"));
    let error = refused(&|s| (s.hyper.ridge_head, s.hyper.epochs) = (false, 1));
    assert!(
        error.contains("--ridge-folds") && error.contains("--ridge-head"),
        "{error}"
    );
    // a mapping too wide to cross-validate (the shipped secondary-structure one: 11,520
    // features) names the way out; every layer's pooled states (2,688) fit
    let error = super::cross_validation_fits(11_520, 5).unwrap_err().to_string();
    assert!(error.contains("--ridge-folds 0") && error.contains("8.5 GB"), "{error}");
    assert!(super::cross_validation_fits(11_520, 0).is_ok() && super::cross_validation_fits(2_688, 20).is_ok());
}

/// `n` rows of 6–11 residues of K, R, D, E whose residues are labelled by their *next*
/// residue: `P` before K or R, `N` before D or E, the last residue unlabelled — a class that
/// only a mapping reading the neighbours can get right.
fn next_residue_rows(n: usize, seed: u64) -> LabelledRows {
    let mut rng = Rng::new(seed, 11);
    let mut rows = LabelledRows {
        source: format!("next-residue-{seed}"),
        ..Default::default()
    };
    for _ in 0..n {
        let sequence: Vec<u8> = (0..6 + rng.below(6)).map(|_| b"KRDE"[rng.below(4)]).collect();
        let label: String = (0..sequence.len())
            .map(|j| match sequence.get(j + 1) {
                Some(b'K' | b'R') => 'P',
                Some(_) => 'N',
                None => '-',
            })
            .collect();
        rows.sequences.push(String::from_utf8(sequence).unwrap());
        rows.labels.push(label);
    }
    rows
}

/// Training, validation and test rows of `rows`, as many as `sizes` says, seeds 1, 2, 3.
fn three_splits(rows: fn(usize, u64) -> LabelledRows, sizes: [usize; 3]) -> Datasets {
    Datasets {
        train: rows(sizes[0], 1),
        valid: Some(rows(sizes[1], 2)),
        test: Some(rows(sizes[2], 3)),
    }
}

#[test]
fn a_per_residue_mapping_with_neighbours_learns_what_the_residue_alone_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = three_splits(next_residue_rows, [160, 40, 60]);
    let accuracy = |context: usize, ridge: bool, epochs: usize| {
        let out = tempfile::tempdir().unwrap();
        let mut spec = spec(out.path());
        spec.kind = Some(Kind::Residue);
        (spec.hyper.context, spec.hyper.ridge_head, spec.hyper.epochs) = (context, ridge, epochs);
        spec.hyper.readout_layers = vec![0, 2];
        let predictor = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(predictor.manifest.hyper_parameters.context, context);
        // saved and loaded, the predictor reads the same neighbours
        let loaded = Predictor::load(out.path()).unwrap();
        let sequences = ["KDKDRE", "EEEEKK"];
        let residues = |p: &Predictor| {
            p.predict_residues(&p.model(&model).unwrap(), sequences.map(Some), InvalidResidue::Error)
                .unwrap()
        };
        assert_eq!(residues(&predictor), residues(&loaded));
        predictor.manifest.metrics["test"]["accuracy"]
    };
    let alone = accuracy(0, true, 0);
    let fitted = accuracy(1, true, 0);
    // the penalty cross-validated over folds of proteins (each protein's residues in one fold)
    let out = tempfile::tempdir().unwrap();
    let mut folded = spec(out.path());
    folded.kind = Some(Kind::Residue);
    (folded.hyper.context, folded.hyper.ridge_head, folded.hyper.epochs) = (1, true, 0);
    (folded.hyper.ridge_folds, folded.hyper.readout_layers) = (3, vec![0, 2]);
    let predictor = train(&model, &data, &folded, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let cross_validated = predictor.manifest.metrics["test"]["accuracy"];
    assert!(cross_validated > 0.95, "cross-validated fit: {cross_validated}");
    let trained = accuracy(1, false, 6);
    eprintln!("alone {alone:.3}, fitted {fitted:.3}, trained {trained:.3}");
    assert!(
        fitted > 0.95 && fitted > alone + 0.15,
        "alone {alone}, with neighbours {fitted}"
    );
    assert!(
        trained > alone + 0.1,
        "alone {alone}, with neighbours by Adam {trained}"
    );
}

#[test]
fn neighbours_and_segments_are_refused_where_they_mean_nothing_and_beyond_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = tempfile::tempdir().unwrap();
    let data = Datasets {
        train: rows(16, 1),
        valid: None,
        test: None,
    };
    let error = |settings: &dyn Fn(&mut TrainSpec)| {
        let mut spec = spec(out.path());
        settings(&mut spec);
        train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false))
            .unwrap_err()
            .to_string()
    };
    let message = error(&|spec| spec.hyper.context = 2);
    assert!(
        message.contains("--context") && message.contains("per-residue"),
        "{message}"
    );
    let message = error(&|spec| spec.hyper.context = context::MAX_CONTEXT + 1);
    assert!(message.contains("--context must be between 0 and 32"), "{message}");
    let outputs = error(&|spec| (spec.hyper.segments, spec.hyper.pool) = (2, crate::predictor::Pool::Outputs));
    assert!(
        outputs.contains("--segments") && outputs.contains("--pool"),
        "{outputs}"
    );
    for bad in [0, crate::model::MAX_SEGMENTS + 1] {
        let message = error(&|spec| spec.hyper.segments = bad);
        assert!(message.contains("--segments: segments must be 1 to 64"), "{message}");
    }
    let residues = Datasets {
        train: next_residue_rows(16, 1),
        valid: None,
        test: None,
    };
    let mut spec = spec(out.path());
    (spec.kind, spec.hyper.segments) = (Some(Kind::Residue), 2);
    let per_residue = train(&model, &residues, &spec, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        per_residue.contains("--segments is for whole-protein tasks"),
        "{per_residue}"
    );
}

/// `n` rows of 12 residues drawn from `AGST`, with one `W`: in the first half (`early`) or the
/// second (`late`); the composition of both classes is the same.
fn where_rows(n: usize, seed: u64) -> LabelledRows {
    let mut rng = Rng::new(seed, 11);
    let mut rows = LabelledRows {
        source: format!("where-{seed}"),
        ..Default::default()
    };
    for i in 0..n {
        let mut sequence: Vec<u8> = (0..12).map(|_| b"AGST"[rng.below(4)]).collect();
        let late = i % 2 == 1;
        sequence[rng.below(6) + if late { 6 } else { 0 }] = b'W';
        rows.sequences.push(String::from_utf8(sequence).unwrap());
        rows.labels.push(if late { "late" } else { "early" }.into());
    }
    rows
}

#[test]
fn segments_let_the_mapping_tell_where_a_residue_sits() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = three_splits(where_rows, [200, 60, 100]);
    let auroc = |segments: usize| {
        let out = tempfile::tempdir().unwrap();
        let mut spec = spec(out.path());
        (spec.hyper.ridge_head, spec.hyper.epochs, spec.hyper.segments) = (true, 0, segments);
        spec.hyper.readout_layers = vec![0, 2];
        let predictor = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(predictor.manifest.hyper_parameters.segments, segments);
        // saved and loaded, the predictor pools the same segments
        let loaded = Predictor::load(out.path()).unwrap();
        let sequences = ["WAGSTAGSTAGS", "AGSTAGSTAGSW"];
        let predict = |p: &Predictor| p.predict(&p.model(&model).unwrap(), sequences.map(Some), InvalidResidue::Error);
        assert_eq!(predict(&predictor).unwrap(), predict(&loaded).unwrap());
        predictor.manifest.metrics["test"]["auroc"]
    };
    let (whole, halves) = (auroc(1), auroc(2));
    eprintln!("whole-protein mean {whole:.3}, two segments {halves:.3}");
    assert!(halves > 0.95 && halves > whole + 0.1, "mean {whole}, segments {halves}");
}
