//! Server-side tables: placeholder columns until the upstream printers land.

/// One column definition as meta.k8s.io/v1 TableColumnDefinition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

/// The columns for a kind.
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    let _ = (group, kind);
    vec![
        Column {
            name: "Name",
            type_: "string",
            format: "name",
            description: "",
            priority: 0,
        },
        Column {
            name: "Created At",
            type_: "date",
            format: "",
            description: "",
            priority: 0,
        },
    ]
}

/// The cells of one object's row, aligned with `columns`.
pub fn row(
    group: &str,
    kind: &str,
    obj: &serde_json::Value,
    now: jiff::Timestamp,
) -> Vec<serde_json::Value> {
    let _ = (group, kind, now);
    let meta = obj.get("metadata");
    vec![
        meta.and_then(|m| m.get("name"))
            .cloned()
            .unwrap_or_default(),
        meta.and_then(|m| m.get("creationTimestamp"))
            .cloned()
            .unwrap_or_default(),
    ]
}
