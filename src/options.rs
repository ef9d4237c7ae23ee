//! r2dl's session options: `SET r2dl.invalid_residue = 'null'`, `SET r2dl.fasta_mmap = false`.

use std::any::Any;

use datafusion::common::config::{
    ConfigEntry, ConfigExtension, ConfigField, ConfigOptions, DATAFUSION_FFI_CONFIG_NAMESPACE, ExtensionOptions, Visit,
};
use datafusion::common::{DataFusionError, config_namespace};

use crate::model::InvalidResidue;

config_namespace! {
    /// Options of the model functions and the FASTA scan, set with `SET r2dl.<name> = <value>`.
    pub struct R2dlOptions {
        /// What `embed` and `predict_*` do with a character that is not a residue (a digit, `-`,
        /// `.`): 'error' (default: fail, naming it), 'null' (NULL result) or 'unknown' (read as X).
        pub invalid_residue: String, default = "error".to_string()
        /// Whether FASTA scans read plain local files through a memory map (default true),
        /// which spares the copy out of the page cache. A file truncated by another process
        /// while it is being read then kills the process (SIGBUS); set false where that can happen.
        pub fasta_mmap: bool, default = true
    }
}

impl ConfigExtension for R2dlOptions {
    const PREFIX: &'static str = "r2dl";
}

/// Lists the options by their full names, `r2dl.<name>`, as Ballista's own options do: Ballista
/// sends a session to its scheduler and executors as `name = value` text taken from these
/// entries, and a name without its prefix would be dropped there (DataFusion's
/// `extensions_options!` leaves the prefix off, so `SET r2dl.invalid_residue` never reached an
/// executor). `SHOW ALL` lists them under these names too.
impl ExtensionOptions for R2dlOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::common::Result<()> {
        ConfigField::set(self, key, value)
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        struct Entries(Vec<ConfigEntry>);
        impl Visit for Entries {
            fn some<V: std::fmt::Display>(&mut self, key: &str, value: V, description: &'static str) {
                self.0.push(ConfigEntry {
                    key: key.to_string(),
                    value: Some(value.to_string()),
                    description,
                });
            }
            fn none(&mut self, key: &str, description: &'static str) {
                self.0.push(ConfigEntry {
                    key: key.to_string(),
                    value: None,
                    description,
                });
            }
        }
        let mut entries = Entries(Vec::new());
        ConfigField::visit(self, &mut entries, Self::PREFIX, "");
        entries.0
    }
}

/// The session's `r2dl.*` options: registered in this process, or carried over DataFusion's FFI
/// (a datafusion-python session passes extension options as `r2dl.<name>` entries of its
/// foreign-options namespace); `None` where the session has neither. A foreign entry this build
/// cannot read (an unknown name, a value of the wrong type) is an error naming it.
fn session_options(options: &ConfigOptions) -> Result<Option<R2dlOptions>, DataFusionError> {
    if let Some(local) = options.extensions.get::<R2dlOptions>() {
        return Ok(Some(local.clone()));
    }
    let Some((_, foreign)) = options
        .extensions
        .iter()
        .find(|(namespace, _)| *namespace == DATAFUSION_FFI_CONFIG_NAMESPACE)
    else {
        return Ok(None);
    };
    let mut found = None;
    for entry in foreign.entries() {
        let key = entry
            .key
            .strip_prefix(DATAFUSION_FFI_CONFIG_NAMESPACE)
            .map_or(entry.key.as_str(), |k| k.strip_prefix('.').unwrap_or(k));
        if let (Some(name), Some(value)) = (key.strip_prefix("r2dl."), entry.value.as_deref()) {
            ConfigField::set(found.get_or_insert_with(R2dlOptions::default), name, value)
                .map_err(|e| DataFusionError::Configuration(format!("r2dl.{name} = '{value}': {e}")))?;
        }
    }
    Ok(found)
}

/// Whether the session's options let FASTA scans map files (see [`R2dlOptions::fasta_mmap`]).
pub fn fasta_mmap(options: &ConfigOptions) -> Result<bool, DataFusionError> {
    Ok(session_options(options)?.is_none_or(|r2dl| r2dl.fasta_mmap))
}

/// The invalid-residue policy the session's options choose.
pub fn invalid_residue_policy(options: &ConfigOptions) -> Result<InvalidResidue, DataFusionError> {
    let Some(r2dl) = session_options(options)? else {
        return Ok(InvalidResidue::default());
    };
    r2dl.invalid_residue.parse().map_err(|_| {
        DataFusionError::Configuration(format!(
            "r2dl.invalid_residue is 'error', 'null' or 'unknown', not '{}'",
            r2dl.invalid_residue
        ))
    })
}

/// Adds the `r2dl.*` options to a session's options, unless they are there already.
pub fn register_options(options: &mut ConfigOptions) {
    if options.extensions.get::<R2dlOptions>().is_none() {
        options.extensions.insert(R2dlOptions::default());
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use datafusion::common::config::ConfigEntry;

    use super::*;

    /// Options as DataFusion's FFI carries them: one foreign namespace holding `r2dl.<name>`.
    #[derive(Debug, Clone)]
    struct Foreign(Vec<(&'static str, &'static str)>);

    impl ConfigExtension for Foreign {
        const PREFIX: &'static str = DATAFUSION_FFI_CONFIG_NAMESPACE;
    }

    impl ExtensionOptions for Foreign {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
        fn cloned(&self) -> Box<dyn ExtensionOptions> {
            Box::new(self.clone())
        }
        fn set(&mut self, _key: &str, _value: &str) -> datafusion::common::Result<()> {
            Ok(())
        }
        fn entries(&self) -> Vec<ConfigEntry> {
            self.0
                .iter()
                .map(|(key, value)| ConfigEntry {
                    key: key.to_string(),
                    value: Some(value.to_string()),
                    description: "",
                })
                .collect()
        }
    }

    fn with_foreign(entries: Vec<(&'static str, &'static str)>) -> ConfigOptions {
        let mut options = ConfigOptions::default();
        options.extensions.insert(Foreign(entries));
        options
    }

    #[test]
    fn options_carried_over_ffi_are_read() {
        let options = with_foreign(vec![("r2dl.invalid_residue", "null"), ("r2dl.fasta_mmap", "false")]);
        assert_eq!(invalid_residue_policy(&options).unwrap(), InvalidResidue::Null);
        assert!(!fasta_mmap(&options).unwrap());
        // the namespace may prefix the keys, and other extensions' entries are ignored
        let options = with_foreign(vec![
            ("datafusion_ffi.r2dl.invalid_residue", "unknown"),
            ("other.x", "1"),
        ]);
        assert_eq!(invalid_residue_policy(&options).unwrap(), InvalidResidue::Unknown);
        assert!(fasta_mmap(&options).unwrap());
    }

    #[test]
    fn unreadable_foreign_options_are_errors_naming_them() {
        let typo = with_foreign(vec![("r2dl.invalid_residu", "null")]);
        let message = invalid_residue_policy(&typo).unwrap_err().to_string();
        assert!(message.contains("r2dl.invalid_residu = 'null'"), "{message}");
        let not_bool = with_foreign(vec![("r2dl.fasta_mmap", "maybe")]);
        let message = fasta_mmap(&not_bool).unwrap_err().to_string();
        assert!(message.contains("r2dl.fasta_mmap = 'maybe'"), "{message}");
    }

    #[test]
    fn local_options_win_and_defaults_hold_without_any() {
        assert_eq!(
            invalid_residue_policy(&ConfigOptions::default()).unwrap(),
            InvalidResidue::Error
        );
        let mut options = with_foreign(vec![("r2dl.invalid_residue", "null")]);
        register_options(&mut options);
        options.set("r2dl.invalid_residue", "unknown").unwrap();
        assert_eq!(invalid_residue_policy(&options).unwrap(), InvalidResidue::Unknown);
        let bad = with_foreign(vec![("r2dl.invalid_residue", "maybe")]);
        assert!(
            invalid_residue_policy(&bad)
                .unwrap_err()
                .to_string()
                .contains("'maybe'")
        );
    }

    #[test]
    fn entries_carry_full_names_so_they_survive_being_sent_as_text() {
        let mut sent = ConfigOptions::default();
        register_options(&mut sent);
        sent.set("r2dl.invalid_residue", "null").unwrap();
        sent.set("r2dl.fasta_mmap", "false").unwrap();
        // what Ballista does with a session: every entry as `key = value`, set on the other side
        let mut received = ConfigOptions::default();
        register_options(&mut received);
        let mut carried = 0;
        for entry in sent.entries() {
            if let (true, Some(value)) = (entry.key.starts_with("r2dl."), entry.value) {
                received.set(&entry.key, &value).unwrap();
                carried += 1;
            }
        }
        assert_eq!(carried, 2);
        assert_eq!(invalid_residue_policy(&received).unwrap(), InvalidResidue::Null);
        assert!(!fasta_mmap(&received).unwrap());
    }
}
