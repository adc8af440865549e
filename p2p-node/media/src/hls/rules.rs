//! A checker of the playlists this node serves against the LL-HLS rules
//! (RFC 8216bis) that players depend on. Tests of every layer use it on
//! real playlists; it is plain parsing with no IO.

/// What a checked playlist lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// `EXT-X-PART-INF:PART-TARGET`, if parts are listed.
    pub part_target: Option<f64>,
    /// `PART-HOLD-BACK` of `EXT-X-SERVER-CONTROL`.
    pub part_hold_back: Option<f64>,
    /// Complete segments listed.
    pub segments: usize,
    /// `EXT-X-PROGRAM-DATE-TIME` tags.
    pub program_dates: usize,
    /// `EXT-X-PART` tags.
    pub parts: usize,
    /// Parts marked `INDEPENDENT=YES`.
    pub independent_parts: usize,
    /// URI of the `EXT-X-PRELOAD-HINT`, if any.
    pub preload_hint: Option<String>,
    /// Whether `EXT-X-ENDLIST` closes it.
    pub ended: bool,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = line.split_once(':')?;
    rest.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

fn num(line: &str, name: &str) -> Result<f64, String> {
    attr(line, name)
        .ok_or_else(|| format!("{name} missing in {line:?}"))?
        .parse::<f64>()
        .map_err(|e| format!("{name} in {line:?}: {e}"))
}

/// Checks `text` against the rules players rely on: every segment has a
/// program date; with parts, `CAN-BLOCK-RELOAD=YES`, `PART-HOLD-BACK` at
/// least twice `PART-TARGET`, every part no longer than `PART-TARGET`,
/// the first part of every segment independent, the parts of a complete
/// segment adding up to its duration, one preload hint after the last
/// part, and no parts or hint once the playlist ended.
pub fn check(text: &str) -> Result<Summary, String> {
    let mut s = Summary::default();
    let mut lines = text.lines();
    if lines.next() != Some("#EXTM3U") {
        return Err("does not start with #EXTM3U".into());
    }
    let mut can_block = false;
    let mut pending_parts: Vec<f64> = vec![];
    let mut pending_date = false;
    let mut first_part_of_segment = true;
    for line in lines {
        if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            can_block = attr(line, "CAN-BLOCK-RELOAD") == Some("YES");
            s.part_hold_back = attr(line, "PART-HOLD-BACK").and_then(|v| v.parse().ok());
        } else if line.starts_with("#EXT-X-PART-INF:") {
            s.part_target = Some(num(line, "PART-TARGET")?);
        } else if line.starts_with("#EXT-X-PROGRAM-DATE-TIME:") {
            s.program_dates += 1;
            pending_date = true;
        } else if line.starts_with("#EXT-X-PART:") {
            let target = s.part_target.ok_or("EXT-X-PART before EXT-X-PART-INF")?;
            let d = num(line, "DURATION")?;
            if d > target + 1e-6 {
                return Err(format!(
                    "part of {d} s exceeds PART-TARGET {target}: {line}"
                ));
            }
            let independent = attr(line, "INDEPENDENT") == Some("YES");
            if first_part_of_segment && !independent {
                return Err(format!(
                    "first part of a segment is not independent: {line}"
                ));
            }
            first_part_of_segment = false;
            if attr(line, "URI").is_none() {
                return Err(format!("part without URI: {line}"));
            }
            s.parts += 1;
            s.independent_parts += usize::from(independent);
            pending_parts.push(d);
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            if s.preload_hint.is_some() {
                return Err("two preload hints".into());
            }
            if attr(line, "TYPE") != Some("PART") {
                return Err(format!("preload hint is not a part: {line}"));
            }
            s.preload_hint = attr(line, "URI").map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d: f64 = rest
                .trim_end_matches(',')
                .split(',')
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("EXTINF {line:?}: {e}"))?;
            if !pending_date {
                return Err(format!("segment {} has no program date", s.segments));
            }
            if !pending_parts.is_empty() {
                let sum: f64 = pending_parts.iter().sum();
                if (sum - d).abs() > 0.002 {
                    return Err(format!("parts add up to {sum} s, segment lasts {d} s"));
                }
            }
            pending_parts.clear();
            pending_date = false;
            first_part_of_segment = true;
        } else if line == "#EXT-X-ENDLIST" {
            s.ended = true;
        } else if !line.starts_with('#') && !line.is_empty() {
            s.segments += 1;
        }
    }
    if let Some(target) = s.part_target {
        if !can_block {
            return Err("parts without CAN-BLOCK-RELOAD=YES".into());
        }
        let hold = s.part_hold_back.ok_or("parts without PART-HOLD-BACK")?;
        if hold < 2.0 * target {
            return Err(format!("PART-HOLD-BACK {hold} < 2 × PART-TARGET {target}"));
        }
        if s.preload_hint.is_none() && !s.ended {
            return Err("live playlist with parts has no preload hint".into());
        }
    }
    if s.ended && (s.preload_hint.is_some() || s.parts > 0) {
        return Err("an ended playlist lists parts or a preload hint".into());
    }
    Ok(s)
}
