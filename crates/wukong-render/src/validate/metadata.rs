//! The API server's own checks of `metadata` (apimachinery's `ValidateObjectMetaAccessor`, run
//! for every custom resource before its schema): name or generateName, labels, annotations,
//! owner references, finalizers; then the CRD schema's `metadata.name` bound.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::FieldError;
use super::gofmt::{bad_value, quote};
use super::structural::Kind;

const DNS1123_SUBDOMAIN: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// `TotalAnnotationSizeLimitB`: 256 KiB for keys and values together.
const ANNOTATIONS_MAX: usize = 256 * 1024;

static SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^{DNS1123_SUBDOMAIN}$")).expect("a regex"));
static QUALIFIED: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^{QUALIFIED_NAME}$")).expect("a regex"));
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^({QUALIFIED_NAME})?$")).expect("a regex"));

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{fmt}')", examples.join(" or "))
}

fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !SUBDOMAIN.is_match(value) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN, &["example.com"]));
    }
    errs
}

/// `IsQualifiedName`: `[prefix/]name`.
fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(dns1123_subdomain(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME, &["MyName", "my.name", "123-abc"])
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !QUALIFIED.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(regex_error(LABEL_VALUE_MSG, &format!("({QUALIFIED_NAME})?"), &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// `NameIsDNSSubdomain` with `prefix`: a trailing '-' of a prefix is allowed.
fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix && name.len() > 1 && name.ends_with('-') {
        let masked = format!("{}a", &name[..name.len() - 1]);
        return dns1123_subdomain(&masked);
    }
    dns1123_subdomain(name)
}

fn invalid(field: &str, value: &Value, detail: &str) -> (Kind, FieldError) {
    (Kind::NonBlocking, FieldError::new(field, format!("Invalid value: {}: {detail}", bad_value(value))))
}

/// Every error of `metadata` the API server reports, in its order (labels and annotations are
/// Go maps: the API server's order among them varies; the lines are the same).
pub(super) fn check(metadata: &Value, name: Option<&str>) -> Vec<(Kind, FieldError)> {
    let mut out = Vec::new();
    let generate = metadata.get("generateName").and_then(Value::as_str).unwrap_or_default();
    if !generate.is_empty() {
        for m in name_is_dns_subdomain(generate, true) {
            out.push(invalid("metadata.generateName", &Value::String(generate.into()), &m));
        }
    }
    match name {
        None | Some("") => out.push((
            Kind::Blocking,
            FieldError::new("metadata.name", "Required value: name or generateName is required".into()),
        )),
        Some(name) => {
            for m in name_is_dns_subdomain(name, false) {
                out.push(invalid("metadata.name", &Value::String(name.into()), &m));
            }
        }
    }
    if let Some(generation) = metadata.get("generation").and_then(Value::as_i64)
        && generation < 0
    {
        out.push(invalid("metadata.generation", &Value::from(generation), "must be greater than or equal to 0"));
    }
    if let Some(labels) = metadata.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for m in qualified_name(k) {
                out.push(invalid("metadata.labels", &Value::String(k.clone()), &m));
            }
            let v = v.as_str().unwrap_or_default();
            for m in label_value(v) {
                out.push(invalid("metadata.labels", &Value::String(v.into()), &m));
            }
        }
    }
    if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
        let mut size = 0;
        for (k, v) in annotations {
            for m in qualified_name(&k.to_lowercase()) {
                out.push(invalid("metadata.annotations", &Value::String(k.clone()), &m));
            }
            size += k.len() + v.as_str().map_or(0, str::len);
        }
        if size > ANNOTATIONS_MAX {
            out.push((
                Kind::Blocking,
                FieldError::new(
                    "metadata.annotations",
                    format!("Too long: may not be more than {ANNOTATIONS_MAX} bytes"),
                ),
            ));
        }
    }
    if let Some(refs) = metadata.get("ownerReferences").and_then(Value::as_array) {
        let mut first_controller: Option<String> = None;
        for r in refs {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let api_version = text("apiVersion");
            let version = match api_version.split_once('/') {
                Some((_, v)) => v.to_string(),
                None => api_version.clone(),
            };
            let field = |k: &str| format!("metadata.ownerReferences.{k}");
            if version.is_empty() {
                out.push(invalid(
                    &field("apiVersion"),
                    &Value::String(api_version.clone()),
                    "version must not be empty",
                ));
            }
            for (k, what) in [("kind", "kind"), ("name", "name"), ("uid", "uid")] {
                if text(k).is_empty() {
                    out.push(invalid(&field(k), &Value::String(String::new()), &format!("{what} must not be empty")));
                }
            }
            if r.get("controller").and_then(Value::as_bool) == Some(true) {
                let this = format!("{}/{}", text("kind"), text("name"));
                match &first_controller {
                    Some(first) => out.push((
                        Kind::NonBlocking,
                        FieldError::new(
                            "metadata.ownerReferences",
                            format!(
                                "Invalid value: {}: Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}",
                                owner_references_sharp_v(refs)
                            ),
                        ),
                    )),
                    None => first_controller = Some(this),
                }
            }
        }
    }
    if let Some(finalizers) = metadata.get("finalizers").and_then(Value::as_array) {
        let texts: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
        for f in &texts {
            for m in qualified_name(f) {
                out.push(invalid("metadata.finalizers", &Value::String((*f).into()), &m));
            }
        }
        if texts.contains(&"orphan") && texts.contains(&"foregroundDeletion") {
            out.push((
                Kind::NonBlocking,
                FieldError::new(
                    "metadata.finalizers",
                    format!(
                        "Invalid value: []string{{{}}}: finalizer orphan and foregroundDeletion cannot be both set",
                        texts.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", ")
                    ),
                ),
            ));
        }
    }
    out
}

/// `%#v` of `[]metav1.OwnerReference`: Go's struct syntax, which is not worth reproducing field
/// by field; the fuzzer's corpus of owner references keeps to what this writes.
fn owner_references_sharp_v(refs: &[Value]) -> String {
    let items: Vec<String> = refs
        .iter()
        .map(|r| {
            let s = |k: &str| quote(r.get(k).and_then(Value::as_str).unwrap_or_default());
            let b = |k: &str| match r.get(k).and_then(Value::as_bool) {
                Some(v) => format!("(*bool)({v})"),
                None => "(*bool)(nil)".to_string(),
            };
            format!(
                "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
                s("apiVersion"),
                s("kind"),
                s("name"),
                s("uid"),
                b("controller"),
                b("blockOwnerDeletion")
            )
        })
        .collect();
    format!("[]v1.OwnerReference{{{}}}", items.join(", "))
}

/// The CRD schema's bound of `metadata.name` (blocking, as every TooLong).
pub(super) fn schema_name_length(name: &str) -> Option<(Kind, FieldError)> {
    (name.chars().count() > wukong_api::crd::MAX_NAME_LENGTH).then(|| {
        (
            Kind::Blocking,
            FieldError::new(
                "metadata.name",
                format!("Too long: may not be more than {} bytes", wukong_api::crd::MAX_NAME_LENGTH),
            ),
        )
    })
}
