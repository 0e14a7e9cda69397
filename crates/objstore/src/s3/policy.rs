//! Bucket policies: a subset of AWS's policy language, parsed, validated and evaluated.
//!
//! Why a module: the issue asks that anonymous requests be served only where a bucket
//! policy allows them, and that policies can deny what keys could otherwise do. The
//! subset, exactly:
//! * `Version` (`2012-10-17` or `2008-10-17`, optional), `Id` (ignored), `Statement`
//!   (one object or a list);
//! * each statement: `Sid` (ignored), `Effect` `Allow` or `Deny`, `Principal` (`"*"`,
//!   `{"AWS": "*"}`, or `{"AWS": [..]}` naming access key ids, bare or as
//!   `arn:aws:iam::ACCOUNT:user/KEYID`), `Action` (`s3:GetObject`, `s3:Get*`, `s3:*`,
//!   `*`; case-insensitive), `Resource` (`arn:aws:s3:::BUCKET` or
//!   `arn:aws:s3:::BUCKET/KEY-PATTERN`; `*` and `?` wildcards; the bucket must be this
//!   one);
//! * `NotPrincipal`, `NotAction`, `NotResource` and `Condition` are refused with
//!   `MalformedPolicy` rather than ignored: ignoring a condition would grant more than
//!   the author meant.
//!
//! Evaluation is AWS's: an explicit Deny that matches wins; else a matching Allow
//! allows; else nothing is said (signed requests then proceed, as every key is the
//! store's owner; anonymous ones are denied). Policies are at most 20 KiB, like AWS's.

use serde_json::Value;

/// AWS's bound on a bucket policy document.
pub const POLICY_BYTES_MAX: usize = 20 * 1024;

/// What a policy says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A matching Deny statement.
    Deny,
    /// A matching Allow statement and no matching Deny.
    Allow,
    /// No statement matches.
    Silent,
}

/// Who a statement applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Principals {
    /// `*`: everyone, anonymous included.
    Anyone,
    /// These access key ids.
    Keys(Vec<String>),
}

#[derive(Clone, Debug)]
struct Statement {
    deny: bool,
    principals: Principals,
    /// Lowercase action patterns.
    actions: Vec<String>,
    resources: Vec<String>,
}

/// A parsed, validated bucket policy.
#[derive(Clone, Debug)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// Why a policy document was refused (S3's `MalformedPolicy` carries this text).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(msg.into()))
}

/// A string or a list of strings, as every list field of the language allows.
fn strings(v: &Value, field: &str) -> Result<Vec<String>, Malformed> {
    let items = match v {
        Value::String(s) => return Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return bad(format!(
                "{field} must be a string or a non-empty list of strings"
            ));
        }
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            _ => bad(format!("{field} must hold only strings")),
        })
        .collect()
}

fn principals(v: &Value) -> Result<Principals, Malformed> {
    let aws = match v {
        Value::String(s) if s == "*" => return Ok(Principals::Anyone),
        Value::Object(m) => {
            if let Some(other) = m.keys().find(|k| *k != "AWS") {
                return bad(format!(
                    "Principal type {other:?} is not supported (use AWS)"
                ));
            }
            m.get("AWS")
                .map(|a| strings(a, "Principal.AWS"))
                .transpose()?
                .unwrap_or_default()
        }
        _ => return bad("Principal must be \"*\" or {\"AWS\": ...}"),
    };
    if aws.is_empty() {
        return bad("Principal names no one");
    }
    if aws.iter().any(|p| p == "*") {
        return Ok(Principals::Anyone);
    }
    let mut keys = Vec::new();
    for p in aws {
        let key = match p.strip_prefix("arn:aws:iam::") {
            Some(rest) => match rest.split_once(":user/") {
                Some((_, key)) => key.to_string(),
                None => return bad(format!("Invalid principal in policy: {p}")),
            },
            None => p,
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad(format!("Invalid principal in policy: {key}"));
        }
        keys.push(key);
    }
    Ok(Principals::Keys(keys))
}

impl Policy {
    /// Parses and validates the policy of `bucket`.
    pub fn parse(text: &str, bucket: &str) -> Result<Policy, Malformed> {
        if text.len() > POLICY_BYTES_MAX {
            return bad(format!(
                "Policy exceeds the maximum allowed document size ({POLICY_BYTES_MAX} bytes)"
            ));
        }
        let doc: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return bad(format!("This policy contains invalid Json: {e}")),
        };
        let Value::Object(doc) = doc else {
            return bad("A policy is a JSON object");
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return bad(format!("Unknown field {key}"));
            }
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return bad("Version must be 2012-10-17 or 2008-10-17"),
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return bad("Missing required field Statement"),
        };
        let statements = statements
            .iter()
            .map(|s| Self::statement(s, bucket))
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    fn statement(v: &Value, bucket: &str) -> Result<Statement, Malformed> {
        let Value::Object(m) = v else {
            return bad("Each Statement is a JSON object");
        };
        for key in m.keys() {
            match key.as_str() {
                "Sid" | "Effect" | "Principal" | "Action" | "Resource" => {}
                "NotPrincipal" | "NotAction" | "NotResource" | "Condition" => {
                    return bad(format!("{key} is not supported"));
                }
                other => return bad(format!("Unknown field {other}")),
            }
        }
        let deny = match m.get("Effect").and_then(Value::as_str) {
            Some("Allow") => false,
            Some("Deny") => true,
            _ => return bad("Effect must be Allow or Deny"),
        };
        let principals = match m.get("Principal") {
            Some(p) => principals(p)?,
            None => return bad("Missing required field Principal"),
        };
        let Some(actions) = m.get("Action") else {
            return bad("Missing required field Action");
        };
        let actions = strings(actions, "Action")?;
        for a in &actions {
            let lower = a.to_ascii_lowercase();
            if lower != "*" && !(lower.starts_with("s3:") && lower.len() > 3) {
                return bad(format!("Policy has invalid action: {a}"));
            }
        }
        let Some(resources) = m.get("Resource") else {
            return bad("Missing required field Resource");
        };
        let resources = strings(resources, "Resource")?;
        for r in &resources {
            let Some(rest) = r.strip_prefix("arn:aws:s3:::") else {
                return bad(format!("Policy has invalid resource: {r}"));
            };
            let bucket_part = rest.split_once('/').map_or(rest, |(b, _)| b);
            if !wildcard_match(bucket_part, bucket) {
                return bad(format!(
                    "Policy has invalid resource: {r} (not in bucket {bucket})"
                ));
            }
        }
        Ok(Statement {
            deny,
            principals,
            actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
            resources,
        })
    }

    /// What the policy says about `principal` (an access key id; `None` when anonymous)
    /// doing `action` (e.g. `s3:GetObject`) on `resource` (an `arn:aws:s3:::` ARN).
    pub fn decide(&self, principal: Option<&str>, action: &str, resource: &str) -> Decision {
        let action = action.to_ascii_lowercase();
        let mut allowed = false;
        for s in &self.statements {
            let who = match (&s.principals, principal) {
                (Principals::Anyone, _) => true,
                (Principals::Keys(keys), Some(p)) => keys.iter().any(|k| k == p),
                (Principals::Keys(_), None) => false,
            };
            if who
                && s.actions.iter().any(|a| wildcard_match(a, &action))
                && s.resources.iter().any(|r| wildcard_match(r, resource))
            {
                if s.deny {
                    return Decision::Deny;
                }
                allowed = true;
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::Silent
        }
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` any
/// one character. Greedy with one backtrack point: O(len(pattern) * len(text)).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_READ: &str = r#"{
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/public/*"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:Get*"],
             "Resource": ["arn:aws:s3:::b/public/secret*"]},
            {"Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam::hyperscale:user/KEYA"]},
             "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
        ]
    }"#;

    #[test]
    fn deny_beats_allow_and_principals_match() {
        let p = Policy::parse(PUBLIC_READ, "b").unwrap();
        let obj = |k: &str| format!("arn:aws:s3:::b/{k}");
        assert_eq!(
            p.decide(None, "s3:GetObject", &obj("public/a")),
            Decision::Allow
        );
        assert_eq!(
            p.decide(None, "s3:getobject", &obj("public/a")),
            Decision::Allow
        );
        assert_eq!(
            p.decide(None, "s3:GetObject", &obj("private/a")),
            Decision::Silent
        );
        assert_eq!(
            p.decide(None, "s3:PutObject", &obj("public/a")),
            Decision::Silent
        );
        assert_eq!(
            p.decide(None, "s3:GetObject", &obj("public/secret1")),
            Decision::Deny
        );
        assert_eq!(
            p.decide(Some("KEYA"), "s3:DeleteObject", &obj("x")),
            Decision::Deny
        );
        assert_eq!(
            p.decide(Some("KEYB"), "s3:DeleteObject", &obj("x")),
            Decision::Silent
        );
        assert_eq!(
            p.decide(None, "s3:DeleteObject", &obj("x")),
            Decision::Silent
        );
    }

    #[test]
    fn malformed_policies_are_refused_with_reasons() {
        let cases = [
            ("not json", "invalid Json"),
            ("[]", "JSON object"),
            (r#"{"Version":"2012-10-17"}"#, "Statement"),
            (
                r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
                "Effect",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ec2:*","Resource":"arn:aws:s3:::b"}}"#,
                "invalid action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}}"#,
                "invalid resource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"b/*"}}"#,
                "invalid resource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b","Condition":{}}}"#,
                "Condition is not supported",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
                "Principal type",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/x"},"Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
                "Invalid principal",
            ),
            (r#"{"Statement":[],"Version":"2012-10-17"}"#, "Statement"),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::b"}}"#,
                "Action",
            ),
        ];
        for (doc, want) in cases {
            let err = Policy::parse(doc, "b").unwrap_err();
            assert!(err.0.contains(want), "{doc}: {err} lacks {want:?}");
        }
        let big = format!("{{\"Id\":\"{}\"}}", "x".repeat(POLICY_BYTES_MAX));
        assert!(Policy::parse(&big, "b").unwrap_err().0.contains("maximum"));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(!wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::bc/x"));
        assert!(wildcard_match("*a*b*c", "xaybzc"));
        assert!(!wildcard_match("*a*b*c", "xaybz"));
    }
}
