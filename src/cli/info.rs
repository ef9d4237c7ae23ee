//! `r2dl info`: the model and the SQL functions it serves, with each predictor's labels, training
//! size and test metrics.

use r2dl::model::{BertConfig, Readout};
use r2dl::predictor::{CatalogEntry, Kind, Manifest, Pool};

use super::output::Printer;
use super::{CliError, InfoArgs};

/// Runs `r2dl info`.
pub async fn run(args: InfoArgs) -> Result<(), CliError> {
    let spec = args.model.spec();
    let dir = spec.resolve_dir()?;
    let config = BertConfig::from_file(&dir.join("config.json"))?;
    let catalog = args.model.r2dl().catalog()?;
    let mut out = Printer::new();
    if args.format.as_deref() == Some("json") {
        let predictors: Vec<_> = catalog
            .entries()
            .iter()
            .map(|e| serde_json::json!({ "function": format!("predict_{}", e.manifest.name), "dir": e.dir, "manifest": e.manifest }))
            .collect();
        let broken: Vec<_> = catalog
            .broken()
            .iter()
            .map(|b| serde_json::json!({ "function": format!("predict_{}", b.name), "dir": b.dir, "error": b.error }))
            .collect();
        let doc = serde_json::json!({
            "model": { "dir": dir, "hidden_size": config.hidden_size, "layers": config.num_hidden_layers, "vocab_size": config.vocab_size },
            "device": spec.device_name(),
            "predictors": predictors,
            "broken": broken,
        });
        out.line(format_args!("{doc}"));
        return out.finish();
    }
    out.line(format_args!(
        "model: {} ({} layers, d = {}, |V_S| = {}), device {}",
        dir.display(),
        config.num_hidden_layers,
        config.hidden_size,
        config.vocab_size,
        spec.device_name()
    ));
    out.line(format_args!("\nfunctions:"));
    out.line(format_args!(
        "  embed(sequence [, predictor])  FixedSizeList<Float32, {}>",
        config.hidden_size
    ));
    for entry in catalog.entries() {
        print_predictor(&mut out, entry);
    }
    for broken in catalog.broken() {
        out.line(format_args!(
            "  predict_{}  BROKEN, fails when called: {}  [{}]",
            broken.name,
            broken.error,
            broken.dir.display()
        ));
    }
    out.finish()
}

/// A predictor's functions, what they return, and how it was trained and measured.
fn print_predictor(out: &mut Printer, entry: &CatalogEntry) {
    let m = &entry.manifest;
    let returns = match m.kind {
        Kind::Binary => format!("Float32  P({})", m.positive_label.as_deref().unwrap_or("?")),
        Kind::Multiclass if m.labels.len() > 12 => format!(
            "Utf8     one of {} labels ({} | … | {})",
            m.labels.len(),
            m.labels[..3].join(" | "),
            m.labels[m.labels.len() - 1]
        ),
        Kind::Multiclass => format!("Utf8     one of {}", m.labels.join(" | ")),
        Kind::Regression => "Float64  value".to_string(),
        Kind::Residue => format!("Utf8     one of {} per residue", m.labels.join(" | ")),
    };
    let test = m.metrics.get("test").map(|t| {
        let keys: &[&str] = if m.kind == Kind::Regression {
            &["spearman", "r2", "rmse"]
        } else {
            &["accuracy", "auroc", "mcc"]
        };
        keys.iter()
            .filter_map(|k| t.get(*k).map(|v| format!("{k} {v:.3}")))
            .collect::<Vec<_>>()
            .join(", ")
    });
    out.line(format_args!("  predict_{}(sequence)  {returns}", m.name));
    if m.kind == Kind::Multiclass {
        out.line(format_args!(
            "  predict_{}_top(sequence, k)  List<Struct<label: Utf8, probability: Float32>>",
            m.name
        ));
    }
    if m.kind == Kind::Residue {
        out.line(format_args!(
            "  predict_{}_probabilities(sequence)  List<Struct<{}>> per residue",
            m.name,
            m.labels
                .iter()
                .map(|l| format!("{l}: Float32"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mapping = describe_mapping(m);
    out.line(format_args!(
        "      trained on {} rows of {} (k = {}, {mapping}); test: {}  [{}]",
        m.training_data.train_rows,
        m.training_data.source,
        m.sparsity.k,
        test.unwrap_or_else(|| "not measured".into()),
        entry.dir.display()
    ));
}

/// How a predictor's output mapping reads the model and was trained, in words: its shape, the
/// layers it reads, its pooling and standardisation, a closed-form start (and the epochs that
/// followed it, when one of them was kept), an ensemble.
fn describe_mapping(m: &Manifest) -> String {
    let mut mapping = match m.hyper_parameters.head_hidden {
        0 => "linear mapping".to_string(),
        units => format!("{units} hidden units"),
    };
    let readout = Readout::from_stored(&m.hyper_parameters.readout_layers);
    if !readout.is_last() {
        mapping.push_str(&format!(" on layers {readout}"));
    }
    match m.hyper_parameters.context {
        0 => {}
        1 => mapping.push_str(", each residue with its neighbour on either side"),
        context => mapping.push_str(&format!(", each residue with its {context} neighbours on either side")),
    }
    if m.hyper_parameters.segments > 1 {
        let k = m.hyper_parameters.segments;
        mapping.push_str(&format!(", the mean of each of {k} equal stretches of the protein"));
    }
    match m.hyper_parameters.pool {
        Pool::Features => {}
        Pool::Outputs => mapping.push_str(", outputs averaged over residues"),
        Pool::Sum => mapping.push_str(", outputs summed over residues"),
    }
    if m.hyper_parameters.standardise {
        mapping.push_str(", inputs standardised");
    }
    if let Some(penalty) = m.training.ridge_penalty {
        let chosen_by = match m.hyper_parameters.ridge_folds {
            0 => String::new(),
            folds => format!(", chosen by {folds}-fold cross-validation"),
        };
        mapping.push_str(&format!(
            ", fitted in closed form (ridge penalty {penalty:.2e}{chosen_by})"
        ));
        match m.training.best_epoch {
            0 => {}
            1 => mapping.push_str(", then trained 1 epoch"),
            epochs => mapping.push_str(&format!(", then trained {epochs} epochs")),
        }
    }
    if !m.members.is_empty() {
        mapping.push_str(&format!(", an ensemble of {} members", m.members.len() + 1));
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest as `r2dl train --ridge-head --readout 0,1,2,3,4,5,6` writes it, kept at
    /// `best_epoch`.
    fn fitted(best_epoch: usize) -> Manifest {
        let mut manifest: serde_json::Value =
            serde_json::from_str(include_str!("../../udfs/toxicity/manifest.json")).expect("JSON");
        manifest["hyper_parameters"]["head_hidden"] = 0.into();
        manifest["hyper_parameters"]["readout_layers"] = serde_json::json!([0, 1, 2, 3, 4, 5, 6]);
        manifest["training"]["ridge_penalty"] = 10.0.into();
        manifest["hyper_parameters"]["ridge_folds"] = 0.into();
        manifest["training"]["best_epoch"] = best_epoch.into();
        serde_json::from_value(manifest).expect("a manifest")
    }

    #[test]
    fn a_closed_form_fit_says_whether_epochs_followed_it() {
        let kept = "linear mapping on layers 0,1,2,3,4,5,6, fitted in closed form (ridge penalty 1.00e1)";
        assert_eq!(describe_mapping(&fitted(0)), kept);
        let mut folded = fitted(0);
        (folded.hyper_parameters.ridge_folds, folded.training.ridge_penalty) = (5, Some(10f64.sqrt()));
        assert_eq!(
            describe_mapping(&folded),
            "linear mapping on layers 0,1,2,3,4,5,6, fitted in closed form (ridge penalty 3.16e0, chosen by \
             5-fold cross-validation)"
        );
        assert_eq!(describe_mapping(&fitted(1)), format!("{kept}, then trained 1 epoch"));
        assert_eq!(describe_mapping(&fitted(3)), format!("{kept}, then trained 3 epochs"));
        let mut trained = fitted(3);
        trained.training.ridge_penalty = None;
        assert_eq!(describe_mapping(&trained), "linear mapping on layers 0,1,2,3,4,5,6");
        // a per-residue mapping that reads neighbours
        trained.hyper_parameters.context = 7;
        assert_eq!(
            describe_mapping(&trained),
            "linear mapping on layers 0,1,2,3,4,5,6, each residue with its 7 neighbours on either side"
        );
    }
}
