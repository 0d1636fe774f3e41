/// The languages pretix offers, as its `ALL_LANGUAGES` in pretix 2026.8.0 lists them (pretix
/// 2024.7.0 offers a subset). A translation in any other language would never be shown.
enum PretixLanguages {
    static let codes = [
        "en", "de", "de-informal", "ar", "eu", "ca", "zh-hans", "zh-hant", "cs", "hr", "da", "nl", "nl-informal",
        "fr", "fi", "gl", "el", "he", "hu", "id", "it", "ja", "lv", "nb-no", "pl", "pt-pt", "pt-br", "ro", "ru",
        "sk", "sv", "es", "es-419", "th", "tr", "uk",
    ]

    /// The code nearest to `code`: itself spelled as pretix spells it (`pt_BR`), the same
    /// language (`en-us`: `en`), or one typo away (`fra`: `fr`). Nil when none is near.
    static func nearest(to code: String) -> String? {
        let spelled = code.lowercased().replacing("_", with: "-")
        let language = spelled.split(separator: "-").first ?? ""
        return codes.first { $0 == spelled }
            ?? codes.first { $0.split(separator: "-").first == language }
            ?? codes.first { Suggestions.editDistance(spelled, $0) == 1 }
    }
}
