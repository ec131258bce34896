//! The words of documents Kura makes itself (the audit report), from the same catalogue the
//! window uses (`ui/src/i18n/{en,ja}.json`): one place to translate, checked for parity by the
//! window's tests.

use std::collections::HashMap;
use std::sync::OnceLock;

const EN: &str = include_str!("../../../ui/src/i18n/en.json");
const JA: &str = include_str!("../../../ui/src/i18n/ja.json");

fn table(lang: &str) -> &'static HashMap<String, String> {
    static TABLES: OnceLock<[HashMap<String, String>; 2]> = OnceLock::new();
    let t = TABLES.get_or_init(|| {
        // A catalogue that does not parse leaves its words untranslated (the window's tests
        // parse both files, so it cannot land).
        [
            serde_json::from_str(EN).unwrap_or_default(),
            serde_json::from_str(JA).unwrap_or_default(),
        ]
    });
    if lang == "ja" { &t[1] } else { &t[0] }
}

/// The text of `key` in `lang` (`ja`, else English), if the catalogue has it.
pub fn lookup(lang: &str, key: &str) -> Option<String> {
    table(lang)
        .get(key)
        .or_else(|| table("en").get(key))
        .cloned()
}

/// The text of `key`, or the key itself.
pub fn text(lang: &str, key: &str) -> String {
    lookup(lang, key).unwrap_or_else(|| key.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_catalogues_parse_and_have_the_report_words() {
        for lang in ["en", "ja"] {
            for key in [
                "audit.title",
                "audit.verify_ok",
                "audit.keys",
                "audit.no_key",
                "event.disposed",
                "status.available",
            ] {
                assert!(super::table(lang).contains_key(key), "{lang} {key}");
            }
        }
        assert_ne!(
            super::text("ja", "audit.title"),
            super::text("en", "audit.title")
        );
    }
}
