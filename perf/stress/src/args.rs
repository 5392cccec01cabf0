//! A tiny command-line reader: `--name value`, `--name=value` and `--flag`.
//! Unknown options are an error, so a typo never silently runs defaults.

use std::collections::BTreeMap;
use std::str::FromStr;

pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
    pub positional: Vec<String>,
}

impl Args {
    /// `flag_names`: options that take no value.
    pub fn parse(
        argv: impl IntoIterator<Item = String>,
        flag_names: &[&str],
    ) -> Result<Args, String> {
        let mut values = BTreeMap::new();
        let mut flags = Vec::new();
        let mut positional = Vec::new();
        let mut it = argv.into_iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                positional.push(a);
                continue;
            };
            if let Some((n, v)) = name.split_once('=') {
                values.insert(n.to_owned(), v.to_owned());
            } else if flag_names.contains(&name) {
                flags.push(name.to_owned());
            } else {
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                values.insert(name.to_owned(), v);
            }
        }
        Ok(Args {
            values,
            flags,
            positional,
        })
    }

    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.flags.len();
        self.flags.retain(|f| f != name);
        before != self.flags.len()
    }

    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.values.remove(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: cannot read '{v}'")),
        }
    }

    pub fn opt(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// Fails on any option no `get`/`flag`/`opt` call asked for.
    pub fn finish(self) -> Result<Vec<String>, String> {
        let unknown: Vec<String> = self
            .values
            .keys()
            .chain(self.flags.iter())
            .map(|k| format!("--{k}"))
            .collect();
        if unknown.is_empty() {
            Ok(self.positional)
        } else {
            Err(format!("unknown option(s): {}", unknown.join(" ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::parse(s.split_whitespace().map(str::to_owned), &["peer"]).unwrap()
    }

    #[test]
    fn reads_values_flags_and_rejects_unknown() {
        let mut a = args("--rate 50 --burst-secs=15 --peer x");
        assert_eq!(a.get("rate", 0.0).unwrap(), 50.0);
        assert_eq!(a.get("burst-secs", 60u64).unwrap(), 15);
        assert_eq!(a.get("cancel-secs", 30u64).unwrap(), 30);
        assert!(a.flag("peer"));
        assert_eq!(a.finish().unwrap(), vec!["x"]);
        let mut a = args("--rate fast --typo 1");
        assert!(a.get("rate", 0.0).is_err());
        assert!(a.finish().is_err());
        assert!(Args::parse(vec!["--rate".to_owned()], &[]).is_err());
    }
}
