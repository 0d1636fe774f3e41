import FoundationEssentials
import Mustache

/// Organiser-controlled text. Templates must pass it through an escaping transform
/// (`<% py(provider.public_name) %>`); rendered bare it yields a marker the renderer rejects.
struct ConfigText: MustacheTransformable, CustomStringConvertible {
    static let unescapedMarker = "\u{1}UNESCAPED-TEXT\u{1}"
    static let transforms: Set<String> = ["py", "js", "toml", "html", "po", "md", "line"]

    let value: String

    func transform(_ name: String) -> Any? {
        switch name {
        case "py": return Escaping.python(value)
        case "js": return Escaping.javaScript(value)
        case "toml": return Escaping.toml(value)
        case "html": return Escaping.html(value)
        case "po": return Escaping.po(value)
        case "md": return Escaping.markdown(value)
        case "line": return value
        default: return nil
        }
    }

    var description: String { Self.unescapedMarker }
}

/// Organiser-controlled text with translations (language code → text). `py` renders a
/// Python dict literal for pretix's LazyI18nString, `js` a JSON object.
struct ConfigTranslations: MustacheTransformable, CustomStringConvertible {
    static let transforms: Set<String> = ["py", "js"]

    let values: [String: String]

    private var sorted: [(String, String)] {
        values.sorted { $0.key < $1.key }
    }

    func transform(_ name: String) -> Any? {
        switch name {
        case "py": return "{" + sorted.map { "\(Escaping.python($0.0)): \(Escaping.python($0.1))" }.joined(separator: ", ") + "}"
        case "js": return "{" + sorted.map { "\(Escaping.javaScript($0.0)): \(Escaping.javaScript($0.1))" }.joined(separator: ", ") + "}"
        default: return nil
        }
    }

    var description: String { ConfigText.unescapedMarker }
}

/// What a template variable holds, which decides the transforms it takes.
enum VariableKind {
    /// Validated identifiers, URLs and numbers: inserted as they are.
    case plain
    case text
    case translations

    var transforms: Set<String> {
        switch self {
        case .plain: return []
        case .text: return ConfigText.transforms
        case .translations: return ConfigTranslations.transforms
        }
    }
}

/// The variables every template may use, as documented in the README.
enum TemplateContext {
    static func make(_ config: ForgeConfig) -> [String: [String: Any]] {
        let package = config.package, provider = config.provider, noderails = config.noderails, webhook = config.webhook
        return [
            "package": [
                "name": package.name,
                "normalized_name": package.normalizedName,
                "module": package.module,
                "version": package.version,
                "summary": ConfigText(value: package.summary),
                "author": ConfigText(value: package.author),
                "author_email": package.authorEmail,
                "license": package.license,
                "homepage": package.homepage,
                "pretix_min_version": package.pretixMinVersion,
            ],
            "provider": [
                "identifier": provider.identifier,
                "verbose_name": ConfigText(value: provider.verboseName),
                "public_name": ConfigText(value: provider.publicName),
                "webhook_path": provider.webhookPath,
            ],
            "noderails": [
                "api_base_url": noderails.apiBaseURL,
                "api_origin": origin(of: noderails.apiBaseURL),
                "payment_ui_url": noderails.paymentUIURL,
                "payment_ui_origin": origin(of: noderails.paymentUIURL),
                "currency": noderails.currency,
                "poll_interval_seconds": String(noderails.pollIntervalSeconds),
                "poll_interval_ms": String(noderails.pollIntervalSeconds * 1000),
                "http_timeout_seconds": String(noderails.httpTimeoutSeconds),
                // [noderails.chains] as two dicts keyed by the chain id (a string): name, explorer.
                "chain_names": ConfigTranslations(values: Dictionary(uniqueKeysWithValues: noderails.chains.map { (String($0.id), $0.name) })),
                "chain_explorers": ConfigTranslations(values: Dictionary(uniqueKeysWithValues: noderails.chains.map { (String($0.id), $0.explorer) })),
            ],
            "webhook": [
                "signature_payload": webhook.signaturePayload.rawValue,
                "timestamp_unit": webhook.timestampUnit.rawValue,
                "tolerance_seconds": String(webhook.toleranceSeconds),
                // A Python tuple of the validated event names, e.g. ('authorized', 'captured').
                "confirm_on": pythonTuple(webhook.confirmOn.map(\.rawValue)),
            ],
            "branding": brandingContext(config.branding),
            "compat": compatContext(Compatibility.embedded),
        ]
    }

    /// The Python and pretix versions the plugin claims, as pyproject.toml, the README and
    /// tests.yml write them.
    private static func compatContext(_ compat: Compatibility) -> [String: Any] {
        let python = compat.pythonVersions
        return [
            "python_oldest": python[0],
            "python_newest": python[python.count - 1],
            // "3.9", "3.10", …: the items of a YAML flow sequence.
            "python_versions": python.map { "\"\($0)\"" }.joined(separator: ", "),
            // One pyproject.toml classifier line per version, indented as the template's list.
            "python_classifiers": python.map { "    \"Programming Language :: Python :: \($0)\"," }.joined(separator: "\n"),
            "pretix_newest": compat.newestPretix,
            "pretix_python": compat.pretixPython,
        ]
    }

    private static func brandingContext(_ branding: ForgeConfig.Branding) -> [String: Any] {
        var values: [String: Any] = [
            "accent_color": branding.accentColor,
            "text_color": branding.textColor,
            // Empty when the variant has no logo; the templates show none then.
            "logo_file": branding.logo?.fileName ?? "",
            "logo_alt": ConfigTranslations(values: branding.logo?.altText ?? [:]),
        ]
        for (key, translations) in branding.texts {
            values[key] = ConfigTranslations(values: translations)
        }
        return values
    }

    /// Every variable's kind. The names do not depend on the config's values, so the stock
    /// config's context lists them all.
    static let variableKinds: [String: VariableKind] = {
        guard let stock = try? ConfigLoader.loadDefault() else { preconditionFailure("the embedded default config must load") }
        return variableNames(make(stock))
    }()

    /// Dotted names of all variables, for checking templates before rendering.
    static func variableNames(_ context: [String: [String: Any]]) -> [String: VariableKind] {
        var names: [String: VariableKind] = [:]
        for (table, values) in context {
            for (key, value) in values {
                names["\(table).\(key)"] = value is ConfigText ? .text : value is ConfigTranslations ? .translations : .plain
            }
        }
        return names
    }

    /// ('a', 'b') or ('a',): a Python tuple literal of validated plain names (no escaping needed).
    static func pythonTuple(_ names: [String]) -> String {
        let items = names.map { "'\($0)'" }
        return "(" + items.joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
    }

    /// scheme://host[:port] of a validated URL, the form CSP and postMessage compare.
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return url }
        let port = components.port.map { ":\($0)" } ?? ""
        return "\(scheme.lowercased())://\(host.lowercased())\(port)"
    }
}
