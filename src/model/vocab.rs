//! The protein vocabulary V_T: 20 standard amino acids, the ambiguity codes X B Z J U O, and the
//! base model's own [CLS] / [SEP] / [PAD] tokens.

use std::collections::HashMap;
use std::path::Path;

use super::error::{ModelError, Result};

/// The residues of V_T in token order: the 20 standard amino acids, then X B Z J U O.
pub const RESIDUES: &[u8; 26] = b"ACDEFGHIKLMNPQRSTVWYXBZJUO";
/// Number of residue tokens.
pub const NUM_RESIDUES: usize = RESIDUES.len();
/// The residue token of `X` (unknown amino acid).
pub const UNKNOWN_RESIDUE: u8 = 20;
const INVALID: u8 = u8::MAX;

/// Residue byte (either case) → residue token, or `INVALID`.
const RESIDUE_TOKEN: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < NUM_RESIDUES {
        table[RESIDUES[i] as usize] = i as u8;
        table[RESIDUES[i].to_ascii_lowercase() as usize] = i as u8;
        i += 1;
    }
    table
};

/// What to do with a character that is not a residue (digits, `-`, `.`, spaces…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InvalidResidue {
    /// Fail, naming the row, the position and the character.
    #[default]
    Error,
    /// The sequence's result is NULL.
    Null,
    /// Read it as `X`.
    Unknown,
}

impl std::str::FromStr for InvalidResidue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "null" => Ok(Self::Null),
            "unknown" | "x" => Ok(Self::Unknown),
            other => Err(format!(
                "the invalid-residue policy is 'error', 'null' or 'unknown', not '{other}'"
            )),
        }
    }
}

/// A sequence that cannot be tokenised: the 0-based byte position and the character there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadResidue {
    /// 0-based character position.
    pub position: usize,
    /// The character.
    pub character: char,
}

/// Turns a sequence into residue tokens (upper-cased; a terminal `*` dropped).
///
/// `Ok(None)` means the policy is [`InvalidResidue::Null`] and the sequence has a bad character.
pub fn tokenize_residues(
    sequence: &str,
    policy: InvalidResidue,
    out: &mut Vec<u8>,
) -> std::result::Result<bool, BadResidue> {
    out.clear();
    let bytes = sequence.as_bytes();
    let bytes = bytes.strip_suffix(b"*").unwrap_or(bytes);
    out.reserve(bytes.len());
    for (position, &b) in bytes.iter().enumerate() {
        let token = RESIDUE_TOKEN[b as usize];
        if token != INVALID {
            out.push(token);
            continue;
        }
        match policy {
            // one X per character: UTF-8 continuation bytes belong to the character before
            InvalidResidue::Unknown if b & 0xC0 == 0x80 => {}
            InvalidResidue::Unknown => out.push(UNKNOWN_RESIDUE),
            InvalidResidue::Null => return Ok(false),
            InvalidResidue::Error => {
                let character = sequence[position..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                let position = sequence[..position].chars().count();
                return Err(BadResidue { position, character });
            }
        }
    }
    Ok(true)
}

/// The base model's token ids that the protein vocabulary uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnglishTokens {
    /// `[CLS]`.
    pub cls: u32,
    /// `[SEP]`.
    pub sep: u32,
    /// `[PAD]`.
    pub pad: u32,
    /// For each residue of [`RESIDUES`], the English token of its lower-case letter (the one-hot
    /// initialisation of Θ).
    pub residue_letters: [u32; NUM_RESIDUES],
}

impl EnglishTokens {
    /// Reads the ids from the model folder's `tokenizer.json`, or else its `vocab.txt`.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let tokenizer = dir.join("tokenizer.json");
        let vocab_txt = dir.join("vocab.txt");
        let (path, vocab) = if tokenizer.is_file() {
            (tokenizer.clone(), vocab_from_tokenizer_json(&tokenizer)?)
        } else if vocab_txt.is_file() {
            let text = read(&vocab_txt)?;
            let vocab = text
                .lines()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect();
            (vocab_txt, vocab)
        } else {
            return Err(ModelError::Missing { path: tokenizer });
        };
        let id = |token: &str| {
            vocab.get(token).copied().ok_or_else(|| ModelError::Format {
                path: path.clone(),
                message: format!("the vocabulary has no token '{token}'"),
            })
        };
        let mut residue_letters = [0; NUM_RESIDUES];
        for (slot, residue) in residue_letters.iter_mut().zip(RESIDUES) {
            *slot = id(&(residue.to_ascii_lowercase() as char).to_string())?;
        }
        // BERT's specials, or those `special_tokens_map.json` names (MPNet's `<s>`, `</s>`, `<pad>`)
        let specials = SpecialTokens::read(&dir.join("special_tokens_map.json"))?;
        Ok(Self {
            cls: id(&specials.cls_token)?,
            sep: id(&specials.sep_token)?,
            pad: id(&specials.pad_token)?,
            residue_letters,
        })
    }
}

/// The special tokens a model folder's `special_tokens_map.json` names (BERT's when it is
/// absent or leaves one out).
#[derive(Debug, serde::Deserialize)]
struct SpecialTokens {
    #[serde(default = "SpecialTokens::cls", deserialize_with = "token_text")]
    cls_token: String,
    #[serde(default = "SpecialTokens::sep", deserialize_with = "token_text")]
    sep_token: String,
    #[serde(default = "SpecialTokens::pad", deserialize_with = "token_text")]
    pad_token: String,
}

impl SpecialTokens {
    fn cls() -> String {
        "[CLS]".into()
    }
    fn sep() -> String {
        "[SEP]".into()
    }
    fn pad() -> String {
        "[PAD]".into()
    }

    fn read(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Ok(Self {
                cls_token: Self::cls(),
                sep_token: Self::sep(),
                pad_token: Self::pad(),
            });
        }
        serde_json::from_str(&read(path)?).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: format!("not a special-tokens map: {e}"),
        })
    }
}

/// A special token given as its text, or as an object with its `content`.
fn token_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<String, D::Error> {
    use serde::Deserialize;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Token {
        Text(String),
        Object { content: String },
    }
    Ok(match Token::deserialize(deserializer)? {
        Token::Text(text) | Token::Object { content: text } => text,
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn vocab_from_tokenizer_json(path: &Path) -> Result<HashMap<String, u32>> {
    #[derive(serde::Deserialize)]
    struct Tokenizer {
        model: WordPiece,
    }
    #[derive(serde::Deserialize)]
    struct WordPiece {
        vocab: HashMap<String, u32>,
    }
    let text = read(path)?;
    let tokenizer: Tokenizer = serde_json::from_str(&text).map_err(|e| ModelError::Format {
        path: path.to_path_buf(),
        message: format!("not a WordPiece tokenizer.json: {e}"),
    })?;
    Ok(tokenizer.model.vocab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residues_are_upper_cased_and_a_terminal_stop_is_dropped() {
        let mut out = Vec::new();
        assert_eq!(tokenize_residues("acdY*", InvalidResidue::Error, &mut out), Ok(true));
        assert_eq!(out, [0, 1, 2, 19]);
        assert_eq!(tokenize_residues("XBZJUO", InvalidResidue::Error, &mut out), Ok(true));
        assert_eq!(out, [20, 21, 22, 23, 24, 25]);
    }

    #[test]
    fn invalid_residues_follow_the_policy() {
        let mut out = Vec::new();
        let bad = tokenize_residues("AC-D", InvalidResidue::Error, &mut out);
        assert_eq!(
            bad,
            Err(BadResidue {
                position: 2,
                character: '-'
            })
        );
        assert_eq!(
            tokenize_residues("A*C", InvalidResidue::Error, &mut out)
                .unwrap_err()
                .character,
            '*'
        );
        assert_eq!(tokenize_residues("AC-D", InvalidResidue::Null, &mut out), Ok(false));
        assert_eq!(tokenize_residues("A1.é", InvalidResidue::Unknown, &mut out), Ok(true));
        assert_eq!(out, [0, 20, 20, 20]);
        let bad = tokenize_residues("ÅA9", InvalidResidue::Error, &mut out).unwrap_err();
        assert_eq!(
            bad,
            BadResidue {
                position: 0,
                character: 'Å'
            }
        );
        assert_eq!("Null".parse::<InvalidResidue>(), Ok(InvalidResidue::Null));
        assert!("drop".parse::<InvalidResidue>().is_err());
    }
}
