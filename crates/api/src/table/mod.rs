//! Server-side tables (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns
//! and row cells `kubectl get` prints, as upstream's `pkg/printers/internalversion` defines
//! them for each kind, and the default NAME / CREATED AT table for kinds without a printer.
//!
//! The API server always generates tables wide, so rows carry a cell for every column,
//! including priority-1 columns that kubectl shows only with `-o wide`.
//!
//! - [`columns`]: column definitions per kind, with descriptions from [`docs`];
//! - [`pod`]: the pod row and its STATUS logic; [`hpa`]: the autoscaler row;
//! - [`rows`]: the other kinds' rows; [`format`]: shared formatting.

mod columns;
mod docs;
mod format;
mod hpa;
mod pod;
mod rows;

use serde_json::{json, Value};

/// One column definition as meta.k8s.io/v1 TableColumnDefinition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Column {
    /// The column as JSON, with the field names of meta.k8s.io/v1 TableColumnDefinition.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The columns for a kind; falls back to NAME + AGE ("Name", "Created At") for kinds without printers, as upstream's default table convertor does.
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    columns::for_kind(group, kind).unwrap_or_else(columns::default_columns)
}

/// The cells of one object's row, aligned with `columns`. `now` is used for AGE-style durations.
pub fn row(
    group: &str,
    kind: &str,
    obj: &serde_json::Value,
    now: jiff::Timestamp,
) -> Vec<serde_json::Value> {
    if (group, kind) == ("", "Pod") {
        return pod::row(obj, now);
    }
    let ctx = rows::Ctx { obj, now };
    rows::for_kind(group, kind, &ctx).unwrap_or_else(|| default_row(obj))
}

/// The row's meta.k8s.io/v1 TableRowConditions: upstream marks finished pods `Completed`.
pub fn row_conditions(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
    if (group, kind) != ("", "Pod") {
        return Vec::new();
    }
    let (reason, message) = match format::str_at(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

/// Upstream's human duration (`translateTimestampSince` / `duration.HumanDuration`): "5s", "3m2s", "2d3h", "<unknown>".
pub fn human_duration(d: std::time::Duration) -> String {
    format::human(d)
}

/// The default convertor's cells: the name and the creation time in RFC 3339, UTC.
fn default_row(obj: &Value) -> Vec<Value> {
    let created = format::timestamp(format::get(obj, &["metadata", "creationTimestamp"]))
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_string(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    vec![
        json!(format::str_at(obj, &["metadata", "name"])),
        json!(created),
    ]
}

#[cfg(test)]
mod tests;
