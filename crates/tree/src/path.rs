//! Znode path rules (as `PathUtils.validatePath`).

/// Checks a znode path; the error says why it is invalid.
pub fn validate(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    // Paths are nearly always ASCII: check the bytes, allocation-free
    // (this runs for every request).
    if path.is_ascii() {
        check_chars(path.as_bytes())
    } else {
        check_chars(&path.chars().collect::<Vec<char>>())
    }
}

/// The per-character rules of `validate` (`i` counts characters).
fn check_chars<C: Copy + Into<char>>(chars: &[C]) -> Result<(), String> {
    let at = |i: usize| -> char { chars[i].into() };
    let mut last = '/';
    for i in 1..chars.len() {
        let c = at(i);
        let next_is_end = i + 1 == chars.len() || at(i + 1) == '/';
        if c == '\0' {
            return Err(format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            return Err(format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            if at(i - 2) == '/' && next_is_end {
                return Err(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if at(i - 1) == '/' && next_is_end {
                return Err(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
            || (c as u32) > 0xffff
        {
            // Java forbids surrogates (d800-dfff) too; chars above the BMP are
            // surrogate pairs there, so they are refused here as well.
            return Err(format!("invalid character @{i}"));
        }
        last = c;
    }
    Ok(())
}

/// The parent of a path ("/" for top-level nodes); None for the root or a
/// path without a slash.
pub fn parent(path: &str) -> Option<&str> {
    let i = path.rfind('/')?;
    if path.len() == 1 {
        return None;
    }
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// The last component of a path.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a/...",
            "/zookeeper",
            "/é/ü..",
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\u{1}",
            "/é//a",
            "/é/..",
            "/é\u{e000}",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        // Positions count characters, as Java's do, in either branch.
        assert_eq!(
            validate("/ab//c").unwrap_err(),
            "empty node name specified @4"
        );
        assert_eq!(
            validate("/éb//c").unwrap_err(),
            "empty node name specified @4"
        );
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
