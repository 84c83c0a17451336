//! How `eval` and `bench` print results: one JSON object with `--json`, else a
//! two-column table of the same fields, so the two can never disagree.

use serde::Serialize;

/// Prints `value` (a struct of named fields) as JSON or as a table titled `title`.
pub fn emit<T: Serialize>(title: &str, value: &T, json: bool) -> anyhow::Result<()> {
    let object = serde_json::to_value(value)?;
    if json {
        println!("{object}");
        return Ok(());
    }
    println!("{}", table(title, &object));
    Ok(())
}

fn table(title: &str, object: &serde_json::Value) -> String {
    let rows: Vec<(String, String)> = match object.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), format_value(v)))
            .collect(),
        None => vec![("value".into(), format_value(object))],
    };
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{title}\n{}\n", "-".repeat(title.len().max(width + 12)));
    for (key, value) in rows {
        out.push_str(&format!("{key:<width$}  {value}\n"));
    }
    out
}

fn format_value(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() => format!("{f:.4}"),
        _ => v.to_string().trim_matches('"').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_every_field() {
        let value = serde_json::json!({"psnr": 26.51234, "images": 99, "name": "x"});
        let text = table("VQGAN", &value);
        assert!(text.contains("psnr    26.5123"));
        assert!(text.contains("images  99"));
        assert!(text.contains("name    x"));
    }
}
