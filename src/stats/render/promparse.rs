//! A strict reader for the Prometheus text exposition format 0.0.4, small enough to trust in
//! tests: it rejects what a scraper would reject, and also anything looser than the format
//! (samples of undeclared families, a TYPE or HELP given twice, a family split in two
//! groups, duplicate series, bad escapes). Not used when serving.

use std::collections::HashSet;

/// One sample line, with the family (from the `# TYPE` line) it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The family's name as declared by `# TYPE` (`x` for `x_bucket`, `x_sum`, `x_count`).
    pub family: String,
    /// counter, gauge, histogram, summary or untyped.
    pub kind: String,
    /// The sample's own metric name.
    pub name: String,
    /// Labels in the order written, values unescaped.
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Family {
    name: String,
    kind: String,
}

impl Family {
    /// Does a sample called `name` belong to this family?
    fn owns(&self, name: &str) -> bool {
        let suffix = name.strip_prefix(self.name.as_str());
        match (self.kind.as_str(), suffix) {
            (_, Some("")) => self.kind != "histogram",
            ("histogram", Some("_bucket" | "_sum" | "_count")) => true,
            ("summary", Some("_sum" | "_count")) => true,
            _ => false,
        }
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            s.parse().map_err(|_| format!("bad value {s:?}"))
        }
        _ => Err(format!("bad value {s:?}")),
    }
}

/// Checks HELP text escapes (only `\\` and `\n` are allowed).
fn check_help(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
            return Err(format!("bad escape in HELP {text:?}"));
        }
    }
    Ok(())
}

/// Label (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// Parses `{k="v",...}` at the start of `s`; returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name} given twice"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("bad escape in label value".into()),
                },
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        // A comma separates labels (one may also trail before the brace).
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after label".into());
        }
    }
}

/// Parses a whole exposition; every sample must follow the `# TYPE` of its family.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("text must end with a newline".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut helped: HashSet<String> = HashSet::new();
    // Families already left behind: they may not appear again.
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<(String, Labels)> = HashSet::new();
    let mut samples = Vec::new();

    let mut enter = |name: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() == Some(name) {
            return Ok(());
        }
        if closed.contains(name) {
            return Err(format!("family {name} is split into two groups"));
        }
        if let Some(prev) = current.replace(name.to_string()) {
            closed.insert(prev);
        }
        Ok(())
    };

    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start_matches(' ').splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), text) => {
                    if !is_metric_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                    check_help(text.unwrap_or("")).map_err(err)?;
                    if !helped.insert(name.to_string()) {
                        return Err(err("second HELP".into()));
                    }
                    enter(name, &mut current).map_err(err)?;
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_metric_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(err(format!("unknown type {kind}")));
                    }
                    if families.iter().any(|f| f.name == name) {
                        return Err(err("second TYPE".into()));
                    }
                    if samples.iter().any(|s: &Sample| s.family == name) {
                        return Err(err("TYPE after samples".into()));
                    }
                    enter(name, &mut current).map_err(err)?;
                    families.push(Family {
                        name: name.to_string(),
                        kind: kind.to_string(),
                    });
                }
                (Some("TYPE"), _, _) => return Err(err("incomplete TYPE".into())),
                _ => {} // any other comment
            }
            continue;
        }

        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("expected a space before the value".into()))?;
        let mut parts = rest.split(' ');
        let value = parse_value(parts.next().unwrap_or("")).map_err(err)?;
        if let Some(ts) = parts.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(err("bad timestamp".into()));
        }
        if parts.next().is_some() {
            return Err(err("trailing text".into()));
        }

        // The family with the longest name that owns this sample (x_count could be a family).
        let fam = families
            .iter()
            .filter(|f| f.owns(name))
            .max_by_key(|f| f.name.len())
            .ok_or_else(|| err("sample of a family without TYPE".into()))?;
        enter(&fam.name, &mut current).map_err(err)?;
        let is_bucket = fam.kind == "histogram" && name.ends_with("_bucket");
        match labels.iter().find(|(k, _)| k == "le") {
            Some((_, le)) if is_bucket => {
                parse_value(le).map_err(|e| err(format!("le: {e}")))?;
            }
            None if is_bucket => return Err(err("bucket without le".into())),
            Some(_) if fam.kind == "histogram" => return Err(err("le outside a bucket".into())),
            _ => {}
        }
        let mut key = labels.clone();
        key.sort();
        if !series.insert((name.to_string(), key)) {
            return Err(err("duplicate series".into()));
        }
        samples.push(Sample {
            family: fam.name.clone(),
            kind: fam.kind.clone(),
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_exposition() {
        let text = "# HELP a_total Things, with \\\\ and \\n.\n# TYPE a_total counter\n\
                    a_total{x=\"q\\\"\\\\\\n\",y=\"\"} 3\na_total 4 1700000000000\n\
                    # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\",} 2\n\
                    h_sum 0.75\nh_count 2\n# TYPE g gauge\ng NaN\n";
        let s = parse_exposition(text).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].label("x"), Some("q\"\\\n"));
        assert_eq!(s[0].label("y"), Some(""));
        assert_eq!(s[0].family, "a_total");
        assert_eq!(s[3].label("le"), Some("+Inf"));
        assert_eq!(s[3].family, "h");
        assert_eq!(s[5].kind, "histogram");
        assert!(s[6].value.is_nan());
    }

    #[test]
    fn rejects_loose_text() {
        let bad = [
            "a 1\n",                                           // no TYPE
            "# TYPE a gauge\n# TYPE a gauge\na 1\n",           // TYPE twice
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", // split family
            "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",    // duplicate
            "# TYPE a gauge\na{x=\"\\t\"} 1\n",                // bad escape
            "# TYPE a gauge\na{x=1} 1\n",                      // unquoted
            "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",          // label twice
            "# TYPE a gauge\na one\n",                         // bad value
            "# TYPE a gauge\na 1",                             // no final newline
            "# TYPE h histogram\nh_bucket 1\n",                // bucket without le
            "# TYPE h histogram\nh 1\n",                       // histogram's bare name
            "# TYPE a sometype\na 1\n",                        // unknown type
            "# HELP a x\n# HELP a y\n# TYPE a gauge\n",        // HELP twice
            "# HELP a bad \\t escape\n",                       // HELP escape
            "# TYPE a gauge\na  1\n",                          // two spaces
        ];
        for b in bad {
            assert!(parse_exposition(b).is_err(), "accepted {b:?}");
        }
    }
}
