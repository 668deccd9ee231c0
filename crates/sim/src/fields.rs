//! Field definitions: the built-in incident fields of the platform and the custom fields
//! imported with customizations, as `GET /types/{type}/fields` answers them, and the conversion
//! between select values' ids and labels (`handle_format=names`).

use serde_json::{Value, json};

use crate::platform::{PlatformState, stable_uuid};

/// Type id of incident fields.
pub const TYPE_INCIDENT: i64 = 0;
/// Type id of rule activity fields (`actioninvocation`).
pub const TYPE_ACTIONINVOCATION: i64 = 6;
/// Type id of function input fields (`__function`).
pub const TYPE_FUNCTION: i64 = 11;

/// The type id of a type name used in `/types/{name}/fields`, when it is one with fields.
pub fn type_id(type_name: &str) -> Option<i64> {
    match type_name {
        "incident" => Some(TYPE_INCIDENT),
        "actioninvocation" => Some(TYPE_ACTIONINVOCATION),
        "__function" => Some(TYPE_FUNCTION),
        _ => None,
    }
}

fn values(vals: &[(Value, &str)], default: Option<usize>) -> Value {
    Value::Array(
        vals.iter()
            .enumerate()
            .map(|(i, (v, label))| {
                json!({
                    "value": v,
                    "label": label,
                    "enabled": true,
                    "hidden": false,
                    "default": default == Some(i),
                    "properties": null,
                    "uuid": stable_uuid("field-value", &format!("{v}/{label}")),
                })
            })
            .collect(),
    )
}

fn field(id: i64, name: &str, text: &str, input_type: &str, vals: Value, required: bool) -> Value {
    json!({
        "id": id,
        "name": name,
        "text": text,
        "prefix": null,
        "type_id": TYPE_INCIDENT,
        "input_type": input_type,
        "tooltip": "",
        "placeholder": "",
        "required": if required { json!("always") } else { Value::Null },
        "internal": false,
        "read_only": matches!(
            name,
            "id" | "create_date" | "inc_last_modified_date" | "creator_id"
        ),
        "blank_option": !required,
        "changeable": true,
        "templates": [],
        "deprecated": false,
        "export_key": format!("incident/{name}"),
        "uuid": stable_uuid("builtin-field", name),
        "values": vals,
        "rich_text": false,
        "is_tracked": false,
    })
}

/// The built-in incident fields (a subset of a real platform's: the ones integrations use).
pub fn builtin_incident_fields() -> Vec<Value> {
    builtin().to_vec()
}

fn builtin() -> &'static [Value] {
    static FIELDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(make_builtin_incident_fields)
}

fn make_builtin_incident_fields() -> Vec<Value> {
    let none = || json!([]);
    let severity = values(
        &[(json!(4), "Low"), (json!(5), "Medium"), (json!(6), "High")],
        None,
    );
    let plan_status = values(&[(json!("A"), "Active"), (json!("C"), "Closed")], Some(0));
    let resolution = values(
        &[
            (json!(7), "Unresolved"),
            (json!(8), "Duplicate"),
            (json!(9), "Not an Issue"),
            (json!(10), "Resolved"),
        ],
        None,
    );
    let incident_types = values(
        &[
            (json!(4), "Lost documents / files / records"),
            (json!(5), "Lost PC / laptop / tablet"),
            (json!(16), "TBD / Unknown"),
            (json!(17), "Improper disposal: digital asset"),
            (json!(18), "Improper disposal: documents / files"),
            (json!(19), "Malware"),
            (json!(20), "Stolen PC / laptop / tablet"),
            (json!(21), "Denial of Service"),
            (json!(22), "Phishing"),
            (json!(23), "Communication error (fax; email)"),
            (json!(24), "System Intrusion"),
        ],
        None,
    );
    let nist = values(
        &[
            (
                json!(1),
                "Attrition (Denial-of-Service and Brute-Force Attacks)",
            ),
            (json!(2), "E-mail"),
            (json!(3), "External/Removable Media"),
            (json!(4), "Impersonation"),
            (json!(5), "Improper Usage"),
            (json!(6), "Loss or Theft of Equipment"),
            (json!(7), "Other"),
            (json!(8), "Web"),
        ],
        None,
    );
    let exposure = values(
        &[
            (json!(1), "Unknown"),
            (json!(2), "ExternalParty"),
            (json!(3), "Individual"),
        ],
        Some(0),
    );
    let phases = values(
        &[
            (json!(1000), "Engage"),
            (json!(1001), "Detect/Analyze"),
            (json!(1002), "Respond"),
            (json!(1003), "Post-Incident"),
            (json!(1004), "Complete"),
        ],
        Some(0),
    );
    vec![
        field(1, "id", "ID", "number", none(), false),
        field(2, "name", "Name", "text", none(), true),
        field(3, "description", "Description", "textarea", none(), false),
        field(
            4,
            "discovered_date",
            "Date Discovered",
            "datetimepicker",
            none(),
            true,
        ),
        field(
            5,
            "create_date",
            "Date Created",
            "datetimepicker",
            none(),
            false,
        ),
        field(
            6,
            "start_date",
            "Date Occurred",
            "datetimepicker",
            none(),
            false,
        ),
        field(7, "due_date", "Date Due", "datetimepicker", none(), false),
        field(8, "severity_code", "Severity", "select", severity, false),
        field(
            9,
            "incident_type_ids",
            "Incident Type",
            "multiselect",
            incident_types,
            false,
        ),
        field(10, "plan_status", "Status", "select", plan_status, false),
        field(
            11,
            "resolution_id",
            "Resolution",
            "select",
            resolution,
            false,
        ),
        field(
            12,
            "resolution_summary",
            "Resolution Summary",
            "textarea",
            none(),
            false,
        ),
        field(13, "phase_id", "Phase", "select", phases, false),
        field(14, "confirmed", "Confirmed", "boolean", none(), false),
        field(
            15,
            "negative_pr_likely",
            "Negative PR",
            "boolean",
            none(),
            false,
        ),
        field(
            16,
            "reporter",
            "Reporting Individual",
            "text",
            none(),
            false,
        ),
        field(17, "city", "City", "text", none(), false),
        field(18, "addr", "Address", "text", none(), false),
        field(19, "zip", "Zip", "text", none(), false),
        field(20, "owner_id", "Owner", "number", none(), false),
        field(
            21,
            "end_date",
            "Date Closed",
            "datetimepicker",
            none(),
            false,
        ),
        field(22, "inc_training", "Simulation", "boolean", none(), false),
        field(
            24,
            "inc_start",
            "Incident Start",
            "datetimepicker",
            none(),
            false,
        ),
        field(
            25,
            "data_compromised",
            "Data Compromised",
            "boolean",
            none(),
            false,
        ),
        field(
            26,
            "nist_attack_vectors",
            "NIST Attack Vectors",
            "multiselect",
            nist,
            false,
        ),
        field(
            27,
            "exposure_type_id",
            "Exposure Type",
            "select",
            exposure,
            false,
        ),
        field(
            28,
            "employee_involved",
            "Employee Involved",
            "boolean",
            none(),
            false,
        ),
        field(29, "creator_id", "Created By", "number", none(), false),
        field(30, "state", "State", "text", none(), false),
        field(31, "country", "Country", "text", none(), false),
        field(
            32,
            "exposure_individual_name",
            "Exposure Individual Name",
            "text",
            none(),
            false,
        ),
        field(
            33,
            "jurisdiction_name",
            "Jurisdiction",
            "text",
            none(),
            false,
        ),
        field(
            23,
            "inc_last_modified_date",
            "Last Modified",
            "datetimepicker",
            none(),
            false,
        ),
    ]
}

/// A select or multiselect field's (id, label) pairs. Values without a usable `value` get
/// `field id * 1000 + index`.
pub fn select_values(field: &Value) -> Vec<(Value, String)> {
    let fid = field.get("id").and_then(Value::as_i64).unwrap_or(0);
    field
        .get("values")
        .and_then(Value::as_array)
        .map(|vals| {
            vals.iter()
                .enumerate()
                .map(|(i, v)| {
                    let id = match v.get("value") {
                        Some(x @ (Value::Number(_) | Value::String(_))) => x.clone(),
                        _ => json!(fid.saturating_mul(1000).saturating_add(i as i64)),
                    };
                    let label = v
                        .get("label")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    (id, label)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_select(field: &Value) -> bool {
    matches!(
        field.get("input_type").and_then(Value::as_str),
        Some("select" | "multiselect")
    )
}

/// Converts one select value given as an id or a label to the stored id.
fn to_id(field: &Value, v: &Value) -> Option<Value> {
    let vals = select_values(field);
    vals.iter()
        .find(|(id, _)| id == v)
        .or_else(|| {
            v.as_str()
                .and_then(|s| vals.iter().find(|(_, label)| label == s))
        })
        .map(|(id, _)| id.clone())
}

fn to_label(field: &Value, v: &Value) -> Value {
    // String-valued selects (plan_status "A"/"C") keep their values.
    if v.is_string() {
        return v.clone();
    }
    select_values(field)
        .into_iter()
        .find(|(id, _)| id == v)
        .map(|(_, label)| Value::String(label))
        .unwrap_or_else(|| v.clone())
}

/// Normalises a value for `field` as the platform stores it: select labels become ids. Returns a
/// message naming the field and value when a select value does not exist.
pub fn normalise(field: &Value, name: &str, v: &Value) -> Result<Value, String> {
    if !is_select(field) || v.is_null() {
        return Ok(v.clone());
    }
    let one = |x: &Value| {
        to_id(field, x).ok_or_else(|| format!("'{x}' is not a valid value for field '{name}'"))
    };
    match (field.get("input_type").and_then(Value::as_str), v) {
        (Some("multiselect"), Value::Array(items)) => items
            .iter()
            .map(one)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Some("multiselect"), x) => one(x).map(|id| Value::Array(vec![id])),
        (_, x) => one(x),
    }
}

/// A stored value shown with `handle_format=names`: select ids become labels.
pub fn to_names(field: &Value, v: &Value) -> Value {
    if !is_select(field) {
        return v.clone();
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|x| to_label(field, x)).collect()),
        x => to_label(field, x),
    }
}

impl PlatformState {
    /// Field definitions of a type as `GET /types/{type}/fields` answers them: built-in
    /// incident fields first, then imported fields of that type (with their platform ids).
    pub fn type_fields(&self, type_name: &str) -> Vec<Value> {
        let mut out = Vec::new();
        if type_name == "incident" {
            out.extend(builtin().iter().map(|f| self.with_dynamic_values(f)));
        }
        if let Some(tid) = type_id(type_name) {
            out.extend(
                self.store
                    .list("fields")
                    .iter()
                    .filter(|o| o.json.get("type_id").and_then(Value::as_i64) == Some(tid))
                    .map(|o| {
                        let mut f = o.json.clone();
                        f["id"] = json!(o.id);
                        f
                    }),
            );
        } else if let Some(dt) = self.store.get("types", type_name) {
            // A data table's columns.
            if let Some(cols) = dt.json.get("fields").and_then(Value::as_object) {
                out.extend(cols.values().cloned());
            }
        }
        out
    }

    /// One incident field by name: built-in, or custom (`properties.<name>` on incidents).
    /// The bool says whether it is custom.
    pub fn incident_field(&self, name: &str) -> Option<(Value, bool)> {
        if let Some(f) = builtin().iter().find(|f| f["name"] == name) {
            return Some((self.with_dynamic_values(f), false));
        }
        self.store
            .list("fields")
            .iter()
            .find(|o| {
                o.json.get("type_id").and_then(Value::as_i64) == Some(TYPE_INCIDENT)
                    && o.json.get("name").and_then(Value::as_str) == Some(name)
            })
            .map(|o| {
                let mut f = o.json.clone();
                f["id"] = json!(o.id);
                (f, true)
            })
    }

    /// A built-in field with the values that depend on the platform's objects (the phases of
    /// `phase_id`).
    fn with_dynamic_values(&self, f: &Value) -> Value {
        let mut f = f.clone();
        if f["name"] == "phase_id" {
            f["values"] = self.phase_values();
        }
        f
    }

    /// A field stored by an import, by uuid (with its platform id).
    pub fn field_by_uuid(&self, uuid: &str) -> Option<Value> {
        self.store
            .list("fields")
            .iter()
            .find(|o| o.json.get("uuid").and_then(Value::as_str) == Some(uuid))
            .map(|o| {
                let mut f = o.json.clone();
                f["id"] = json!(o.id);
                f
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_values_convert_both_ways() {
        let fields = builtin_incident_fields();
        let sev = fields
            .iter()
            .find(|f| f["name"] == "severity_code")
            .unwrap();
        assert_eq!(
            normalise(sev, "severity_code", &json!("High")).unwrap(),
            json!(6)
        );
        assert_eq!(
            normalise(sev, "severity_code", &json!(4)).unwrap(),
            json!(4)
        );
        assert!(normalise(sev, "severity_code", &json!("Huge")).is_err());
        assert_eq!(to_names(sev, &json!(5)), json!("Medium"));
        let types = fields
            .iter()
            .find(|f| f["name"] == "incident_type_ids")
            .unwrap();
        assert_eq!(
            normalise(types, "incident_type_ids", &json!(["Malware", 22])).unwrap(),
            json!([19, 22])
        );
        assert_eq!(to_names(types, &json!([19])), json!(["Malware"]));
        let status = fields.iter().find(|f| f["name"] == "plan_status").unwrap();
        assert_eq!(
            normalise(status, "plan_status", &json!("Closed")).unwrap(),
            json!("C")
        );
        assert_eq!(to_names(status, &json!("A")), json!("A"));
    }
}
