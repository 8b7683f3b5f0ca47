//! Argument parsing as zkCli does it: command lines split by
//! `MyCommandOptions.parseCommand` (blank-separated words, '...' or "..."
//! quoting a word), and each command's flags parsed as Apache commons-cli's
//! `DefaultParser` does (flags anywhere, `-v 3` or `-v3`, bundled `-sw`),
//! with commons-cli's error messages, which zkCli prints as they are.

use std::collections::HashMap;

/// One flag a command takes.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub name: &'static str,
    pub has_arg: bool,
}

pub const fn flag(name: &'static str) -> Flag {
    Flag {
        name,
        has_arg: false,
    }
}

pub const fn valued(name: &'static str) -> Flag {
    Flag {
        name,
        has_arg: true,
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Option<String>>,
    /// The words that are not flags, the command name first.
    pub args: Vec<String>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.as_deref())
    }
}

/// Splits a command line as `ZooKeeperMain.MyCommandOptions.parseCommand`:
/// words are runs of non-blanks; a word that starts with a quote runs to the
/// matching quote, which is stripped.
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let q = chars[i];
        if q == '"' || q == '\'' {
            if let Some(end) = chars[i + 1..].iter().position(|&c| c == q) {
                out.push(chars[i + 1..i + 1 + end].iter().collect());
                i += end + 2;
                continue;
            }
            // An unmatched quote: Java's pattern falls back to a plain word
            // that cannot start with a quote, so the quote is skipped.
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

fn is_negative_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// Parses `argv` (command name first) against `flags`.
pub fn parse(flags: &[Flag], argv: &[String]) -> Result<Parsed, String> {
    let find = |n: &str| flags.iter().find(|f| f.name == n).copied();
    let mut p = Parsed::default();
    let mut it = argv.iter().peekable();
    let mut only_args = false;
    while let Some(tok) = it.next() {
        if only_args || !tok.starts_with('-') || tok.len() == 1 {
            p.args.push(tok.clone());
            continue;
        }
        if tok == "--" {
            only_args = true;
            continue;
        }
        let body = &tok[1..];
        let (name, inline): (&str, Option<String>) = if let Some(f) = find(body) {
            (f.name, None)
        } else if let Some((k, v)) = body.split_once('=').filter(|(k, _)| find(k).is_some()) {
            (
                find(k).map(|f| f.name).unwrap_or_default(),
                Some(v.to_owned()),
            )
        } else {
            let first = &body[..body.chars().next().map_or(0, char::len_utf8)];
            match find(first) {
                Some(f) if f.has_arg => (f.name, Some(body[first.len()..].to_owned())),
                Some(_) if body.chars().all(|c| find(&c.to_string()).is_some_and(|f| !f.has_arg)) => {
                    for c in body.chars() {
                        let f = find(&c.to_string()).expect("checked");
                        p.values.insert(f.name, None);
                    }
                    continue;
                }
                _ => {
                    return Err(format!(
                        "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {tok}"
                    ))
                }
            }
        };
        let f = find(name).expect("found above");
        if !f.has_arg {
            p.values.insert(f.name, None);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => match it.peek() {
                Some(next)
                    if !next.starts_with('-')
                        || next.len() == 1
                        || is_negative_number(next) =>
                {
                    it.next().cloned().expect("peeked")
                }
                _ => {
                    return Err(format!(
                        "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {}",
                        f.name
                    ))
                }
            },
        };
        p.values.insert(f.name, Some(value));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splits_like_zkcli() {
        assert_eq!(
            split_line("  create /a 'hello world' x"),
            v(&["create", "/a", "hello world", "x"])
        );
        assert_eq!(split_line("set /a \"\""), v(&["set", "/a", ""]));
        assert!(split_line("   ").is_empty());
    }

    #[test]
    fn flags_anywhere() {
        let fl = [flag("s"), flag("w"), valued("v")];
        let p = parse(&fl, &v(&["get", "/a", "-sw", "-v", "3"])).unwrap();
        assert!(p.has("s") && p.has("w"));
        assert_eq!(p.value("v"), Some("3"));
        assert_eq!(p.args, v(&["get", "/a"]));
        let p = parse(&fl, &v(&["get", "-v-1", "/a"])).unwrap();
        assert_eq!(p.value("v"), Some("-1"));
        assert!(parse(&fl, &v(&["get", "-x", "/a"]))
            .unwrap_err()
            .contains("Unrecognized option: -x"));
        assert!(parse(&fl, &v(&["get", "/a", "-v"]))
            .unwrap_err()
            .contains("Missing argument for option: v"));
    }
}
