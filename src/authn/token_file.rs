//! Static bearer tokens (`--token-auth-file`): kube-apiserver's CSV, one token a line:
//! `token,user,uid,"group1,group2"` (groups optional; `#` starts a comment line).

use std::collections::HashMap;

use super::{TokenAuthenticator, TokenResponse, Unauthorized, UserInfo};

/// Tokens known in advance.
#[derive(Debug, Default, Clone)]
pub struct StaticTokens {
    tokens: HashMap<String, UserInfo>,
}

impl StaticTokens {
    /// From (token, user) pairs.
    pub fn new(tokens: impl IntoIterator<Item = (String, UserInfo)>) -> Self {
        StaticTokens {
            tokens: tokens.into_iter().collect(),
        }
    }

    /// Add (or replace) one token.
    pub fn insert(&mut self, token: String, user: UserInfo) {
        self.tokens.insert(token, user);
    }

    /// Add every token of `other`.
    pub fn extend(&mut self, other: StaticTokens) {
        self.tokens.extend(other.tokens);
    }

    /// Parse the CSV format. Errors name the line.
    pub fn parse_csv(text: &str) -> Result<Self, String> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err(format!(
                    "token file: line {}: want at least 3 fields (token,user,uid), got {}",
                    i + 1,
                    fields.len()
                ));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let (token, user, uid) = (&fields[0], &fields[1], &fields[2]);
            if token.is_empty() {
                return Err(format!("token file: line {}: empty token", i + 1));
            }
            tokens.insert(
                token.clone(),
                UserInfo {
                    username: user.clone(),
                    uid: uid.clone(),
                    groups,
                    ..Default::default()
                },
            );
        }
        Ok(StaticTokens { tokens })
    }
}

/// Split one CSV record: fields separated by commas, double quotes group ("" is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

#[async_trait::async_trait]
impl TokenAuthenticator for StaticTokens {
    async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<TokenResponse>, Unauthorized> {
        Ok(self.tokens.get(token).map(|user| TokenResponse {
            user: user.clone(),
            // Static tokens are good for any audience.
            audiences: audiences.to_vec(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_give_user_uid_and_quoted_groups() {
        let t =
            StaticTokens::parse_csv("# comment\nabc,alice,u1,\"dev,ops\"\ndef,bob,u2\n").unwrap();
        assert_eq!(t.tokens["abc"].username, "alice");
        assert_eq!(t.tokens["abc"].uid, "u1");
        assert_eq!(t.tokens["abc"].groups, vec!["dev", "ops"]);
        assert!(t.tokens["def"].groups.is_empty());
    }

    #[test]
    fn a_line_without_uid_is_an_error() {
        assert!(StaticTokens::parse_csv("abc,alice\n")
            .unwrap_err()
            .contains("line 1"));
    }
}
