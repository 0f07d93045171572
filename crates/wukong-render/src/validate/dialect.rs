//! Where kube's client-side CEL and the API server's CEL differ, the offline validator evaluates
//! each rule in a form that gives the API server's answer.
//!
//! `isCIDR`: the API server parses with Go's `netip.ParsePrefix`, which refuses an IPv4 octet
//! with a leading zero (`010.0.0.1/24`, `10.0.0.01/24`) and a prefix length with one (`/064`);
//! kube's client-side CEL (ipnet) takes them. Offline, `isCIDR(x)` is evaluated as
//! `(isCIDR(x) && !x.matches(<leading zeros>))`. The CRD keeps the plain rule.

use serde_json::Value;

/// An IPv4 octet (first, or after a dot) or a prefix length written with a leading zero.
const LEADING_ZEROS: &str = r"'(^|:)0[0-9]+\\.|\\.0[0-9]+([./]|$)|/[+0][0-9]'";

/// `rule` with every `isCIDR(<arg>)` made as strict as Go's.
pub(super) fn strict(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len());
    let mut rest = rule;
    while let Some(at) = rest.find("isCIDR(") {
        let before = &rest[..at];
        let is_call = !before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        out.push_str(before);
        let after = &rest[at + "isCIDR(".len()..];
        match (is_call, closing(after)) {
            (true, Some(end)) => {
                let arg = &after[..end];
                let arg = strict(arg);
                out.push_str(&format!("(isCIDR({arg}) && !({arg}).matches({LEADING_ZEROS}))"));
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("isCIDR(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The index of the `)` closing a call whose arguments start `text`, past nested parentheses
/// and string literals.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ')' => return Some(i),
            _ => {}
        }
    }
    None
}

/// The schema with every rule in its strict form, and the map back to the rules as written.
pub(super) fn strict_schema(mut schema: Value) -> (Value, Vec<(String, String)>) {
    let mut renamed = Vec::new();
    visit(&mut schema, &mut renamed);
    (schema, renamed)
}

fn visit(value: &mut Value, renamed: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get_mut("x-kubernetes-validations") {
                for r in rules.iter_mut() {
                    if let Some(Value::String(rule)) = r.get_mut("rule") {
                        let s = strict(rule);
                        if s != *rule {
                            renamed.push((s.clone(), rule.clone()));
                            *rule = s;
                        }
                    }
                }
            }
            map.values_mut().for_each(|v| visit(v, renamed));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| visit(v, renamed)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_is_cidr_call_gets_the_leading_zero_guard() {
        assert_eq!(strict("isCIDR(self)"), format!("(isCIDR(self) && !(self).matches({LEADING_ZEROS}))"));
        let r = strict("!has(a.b) || !isCIDR(a.address.split('/')[0] + ')') || x.isCIDRv4(y)");
        assert!(
            r.starts_with(
                "!has(a.b) || !(isCIDR(a.address.split('/')[0] + ')') && !(a.address.split('/')[0] + ')').matches("
            ),
            "{r}"
        );
        assert!(r.ends_with("|| x.isCIDRv4(y)"), "{r}");
    }
}
