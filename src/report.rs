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
    if let Some(rows) = object.get("rows").and_then(|r| r.as_array()) {
        return row_table(title, rows, object);
    }
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

/// A table with one line per row object and one column per field; the object's other
/// fields follow as `key: value` lines.
fn row_table(title: &str, rows: &[serde_json::Value], object: &serde_json::Value) -> String {
    // Labels (strings) first, then the numbers.
    let mut columns: Vec<String> = rows
        .first()
        .and_then(|r| r.as_object())
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    columns.sort_by_key(|c| !rows[0][c].is_string());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.get(c).map(format_value).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| -> String {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let header = line(&columns);
    let mut out = format!("{title}\n{header}\n{}\n", "-".repeat(header.len()));
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    if let Some(map) = object.as_object() {
        for (key, value) in map.iter().filter(|(k, _)| k.as_str() != "rows") {
            out.push_str(&format!("{key}: {}\n", format_value(value)));
        }
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

    #[test]
    fn rows_become_columns() {
        let value = serde_json::json!({"rows": [{"method": "ilat", "psnr": 20.0}, {"method": "taming", "psnr": 18.5}], "images": 3});
        let text = table("Edit", &value);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("method") && lines[1].contains("psnr"));
        assert!(lines[3].contains("ilat") && lines[3].contains("20.0000"));
        assert!(lines[4].contains("taming") && lines[4].contains("18.5000"));
        assert!(text.contains("images: 3"));
    }
}
