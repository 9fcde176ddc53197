//! Static tokens from upstream's `--token-auth-file` CSV: `token,user,uid,"group1,group2"`,
//! one per line; the groups column is optional.

use std::collections::HashMap;
use std::path::Path;

use super::User;

/// The tokens of one file.
#[derive(Debug, Default)]
pub struct TokenFile {
    tokens: HashMap<String, User>,
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {why}")]
    Line {
        path: String,
        line: usize,
        why: String,
    },
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, why)| TokenFileError::Line {
            path: path.display().to_string(),
            line,
            why,
        })
    }

    /// Parses the CSV; an error carries the 1-based line number.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let fields = csv_fields(line).map_err(|why| (n, why))?;
            if fields.len() < 3 {
                return Err((
                    n,
                    format!("expected at least 3 columns, got {}", fields.len()),
                ));
            }
            let token = fields[0].trim().to_string();
            if token.is_empty() {
                return Err((n, "empty token".to_string()));
            }
            let mut groups: Vec<String> = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            groups.dedup();
            let user = User {
                name: fields[1].trim().to_string(),
                uid: fields[2].trim().to_string(),
                groups,
                ..User::default()
            };
            if tokens.insert(token, user).is_some() {
                // Upstream keeps the last entry and logs the duplicate.
                tracing::warn!(line = n, "duplicate token in the token auth file");
            }
        }
        Ok(TokenFile { tokens })
    }

    pub fn authenticate(&self, token: &str) -> Option<User> {
        self.tokens.get(token).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Splits one CSV record with double-quoted fields (RFC 4180: `""` is a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            }
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".to_string());
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_uids_and_quoted_groups() {
        let f = TokenFile::parse(
            "abc,alice,1001,\"dev,ops\"\n# comment\n\ndef,bob,1002\nghi,carol,1003,solo\n",
        )
        .expect("parses");
        let alice = f.authenticate("abc").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "1001");
        assert_eq!(alice.groups, vec!["dev", "ops"]);
        assert!(f.authenticate("def").expect("bob").groups.is_empty());
        assert_eq!(f.authenticate("ghi").expect("carol").groups, vec!["solo"]);
        assert!(f.authenticate("nope").is_none());
    }

    #[test]
    fn short_lines_and_open_quotes_are_errors_with_line_numbers() {
        assert_eq!(TokenFile::parse("a,b,c\nx,y\n").err().map(|e| e.0), Some(2));
        assert_eq!(TokenFile::parse("a,b,c,\"g1\n").err().map(|e| e.0), Some(1));
    }
}
