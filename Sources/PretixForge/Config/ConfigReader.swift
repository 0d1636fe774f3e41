import FoundationEssentials
import TOMLKit

/// Walks the parsed TOML once, reading typed values and recording every problem.
final class ConfigReader {
    private let root: TOMLTable
    private let file: String
    private let baseDirectory: URL?
    private let confinement: ConfigConfinement?
    private let locator: KeyLocator
    private(set) var diagnostics: [Diagnostic] = []

    init(root: TOMLTable, source: String, file: String, baseDirectory: URL?, confinement: ConfigConfinement? = nil) {
        self.root = root
        self.file = file
        self.baseDirectory = baseDirectory
        self.confinement = confinement
        self.locator = KeyLocator(source: source)
    }

    func report(_ keyPath: String, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(message, at: SourceLocation(file: file, line: locator.line(of: keyPath)),
                                      keyPath: keyPath, fix: fix))
    }

    func readConfig() -> ForgeConfig? {
        checkStructure()
        let package = readPackage()
        let provider = readProvider()
        let noderails = readNodeRails()
        let webhook = readWebhook()
        let branding = readBranding()
        let repository = readRepository()
        guard let package, let provider, let noderails, let webhook, let branding, let repository else { return nil }
        return ForgeConfig(package: package, provider: provider, noderails: noderails, webhook: webhook, branding: branding,
                           repository: repository)
    }

    // MARK: Structure: unknown tables and keys, secrets anywhere

    private func checkStructure() {
        let known = Dictionary(uniqueKeysWithValues: ConfigSchema.tables.map { ($0.name, $0.keys) })
        for key in root.keys.sorted() {
            if ConfigSchema.isSecretKey(key) {
                report(key, "secrets are never part of the config", fix: ConfigSchema.secretsFix)
                continue
            }
            guard let keys = known[key] else {
                let hint = Suggestions.closest(to: key, in: Array(known.keys)).map { "did you mean [\($0)]?" }
                report(key, "unknown table or key", fix: hint ?? "known tables: " + ConfigSchema.tables.map { "[\($0.name)]" }.joined(separator: ", "))
                continue
            }
            guard let table = root[key]?.table else {
                report(key, "expected a table ([\(key)]), found \(typeName(root[key]))", fix: "write it as a [\(key)] section")
                continue
            }
            for inner in table.keys.sorted() where !keys.contains(inner) {
                let path = "\(key).\(inner)"
                if ConfigSchema.isSecretKey(inner) {
                    report(path, "secrets are never part of the config", fix: ConfigSchema.secretsFix)
                } else if let replacement = ConfigSchema.retiredKeys[path] {
                    report(path, "no longer used", fix: replacement)
                } else {
                    let hint = Suggestions.closest(to: inner, in: keys).map { "did you mean '\(key).\($0)'?" }
                    report(path, "unknown key", fix: hint ?? "keys of [\(key)]: " + keys.joined(separator: ", "))
                }
            }
        }
    }

    // MARK: Tables

    static func isProviderIdentifier(_ text: String) -> Bool {
        ASCIIPattern.matches(text, first: ASCIIPattern.isLower,
                             rest: { ASCIIPattern.isLower($0) || ASCIIPattern.isDigit($0) || $0 == UInt8(ascii: "_") }, length: 1...40)
    }

    private func readPackage() -> ForgeConfig.Package? {
        let name = string("package.name")
        if let name, !PythonNames.isValidDistributionName(name) {
            report("package.name", "'\(name)' is not a valid distribution name (PEP 508)",
                   fix: "use letters, digits, '-', '_' and '.', starting and ending with a letter or digit, e.g. \"pretix-noderails\"")
        }
        let module = string("package.module")
        if let module, let problem = PythonNames.moduleNameProblem(module) {
            report("package.module", problem, fix: "choose a lower-case identifier such as \"pretix_\(module.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" })\"")
        }
        let version = string("package.version").flatMap { canonicalVersion($0, key: "package.version") }
        let summary = text("package.summary", multiline: false)
        let author = text("package.author", multiline: false)
        let authorEmail = string("package.author_email")
        if let authorEmail, !Self.isEmailAddress(authorEmail) {
            report("package.author_email", "'\(authorEmail)' is not an e-mail address", fix: "write it as name@example.org")
        }
        let license = string("package.license", default: defaultString("package.license"))
        let licenseText = readLicense(license)
        // A public page on PyPI and in pretix's plugin list: a local address would help no one.
        let homepage = string("package.homepage").flatMap {
            url($0, key: "package.homepage", localHTTP: false, example: "https://github.com/noderails/pretix-noderails")
        }
        let pretixMin = string("package.pretix_min_version", default: defaultString("package.pretix_min_version")).flatMap {
            canonicalVersion($0, key: "package.pretix_min_version").flatMap(testedPretix)
        }
        guard let name, let module, let version, let summary, let author, let authorEmail, let license,
              let licenseText, let homepage, let pretixMin else { return nil }
        return .init(name: name, module: module, version: version, summary: summary, author: author,
                     authorEmail: authorEmail, license: license, licenseText: licenseText, homepage: homepage,
                     pretixMinVersion: pretixMin)
    }

    /// A claim below the oldest pretix `make test` runs the plugin on would be unproven.
    private func testedPretix(_ version: String) -> String? {
        let oldest = Compatibility.embedded.oldestPretix
        guard !Compatibility.isOlder(version, than: oldest) else {
            report("package.pretix_min_version", "pretix \(version) is older than the oldest pretix the plugin is tested on (\(oldest))",
                   fix: "write \"\(oldest)\" or a newer release")
            return nil
        }
        return version
    }

    private func readLicense(_ license: String?) -> String? {
        guard let license else { return nil }
        if !Self.isLicenseExpression(license) {
            report("package.license", "'\(license)' is not an SPDX license expression", fix: "write an SPDX identifier such as \"Apache-2.0\" or \"MIT\"")
            return nil
        }
        guard let path = string("package.license_file", required: false) else {
            if license == "Apache-2.0" { return EmbeddedFiles.text("Licenses/Apache-2.0.txt") }
            report("package.license", "pretix-forge ships the text of Apache-2.0 only",
                   fix: "add license_file = \"LICENSE\" (a path relative to the config file) holding the text of \(license)")
            return nil
        }
        guard let data = referencedFile("package.license_file", path, what: "the license text") else { return nil }
        guard let text = String(data: data, encoding: .utf8), !text.isEmpty else {
            report("package.license_file", "cannot read '\(path)' as UTF-8 text", fix: "point it at the license text, relative to the config file")
            return nil
        }
        return text
    }

    /// The bytes of a file the config names by a path relative to itself; nil once the reason is reported.
    private func referencedFile(_ keyPath: String, _ path: String, what: String) -> Data? {
        let shown: String, read: ConfigConfinement.Read
        if let confinement {
            (shown, read) = (path, confinement.read(path))
        } else if let baseDirectory {
            let url = URL(fileURLWithPath: path, relativeTo: baseDirectory)
            (shown, read) = (url.path, Self.read(url))
        } else {
            report(keyPath, "relative paths need a config file on disk")
            return nil
        }
        switch read {
        case .data(let data): return data
        case .folder: report(keyPath, "'\(shown)' is a folder, not a file", fix: "point it at \(what) itself, relative to the config file")
        case .missing where confinement != nil:
            report(keyPath, "'\(shown)' is not in the tree", fix: "add \(what) to the tree, at that path relative to the config file")
        case .missing: report(keyPath, "cannot read '\(shown)'", fix: "give the path of \(what) relative to the config file")
        case .notPlain: report(keyPath, "'\(shown)' is a link or a special file; the config a tree records reads plain files only",
                               fix: "replace it with a copy of \(what)")
        case .outside: report(keyPath, "'\(shown)' is outside the tree; the config a tree records may name files inside the tree only",
                              fix: "copy \(what) into the tree and give its path relative to the config file")
        }
        return nil
    }

    /// A file of the user's config, read as given (links followed); a path to a folder reads as an
    /// unreadable file, and saying which it is points at the mistake.
    private static func read(_ url: URL) -> ConfigConfinement.Read {
        if let data = try? Data(contentsOf: url) { return .data(data) }
        var isDirectory = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory ? .folder : .missing
    }

    private func readProvider() -> ForgeConfig.Provider? {
        let identifier = string("provider.identifier")
        if let identifier, !Self.isProviderIdentifier(identifier) {
            report("provider.identifier", "'\(identifier)' is not a valid provider identifier",
                   fix: "use 1–40 lower-case letters, digits and '_', starting with a letter, e.g. \"noderails\"")
        } else if let identifier, let app = ReservedNames.pretixPaymentProviders[identifier] {
            report("provider.identifier", "'\(identifier)' is the identifier of a payment provider of \(app), which pretix registers itself; "
                   + "the two would share the settings payment_\(identifier)_*", fix: "choose another, e.g. \"\(identifier)_crypto\"")
        }
        let verboseName = text("provider.verbose_name", multiline: true)
        let publicName = text("provider.public_name", multiline: true)
        let webhookPath = string("provider.webhook_path", default: identifier)
        // A defaulted path repeats the identifier's problem; report it once, on the identifier.
        if let webhookPath, value("provider.webhook_path") != nil || identifier.map(Self.isProviderIdentifier) == true,
           !ASCIIPattern.matches(webhookPath, first: { ASCIIPattern.isLower($0) || ASCIIPattern.isDigit($0) },
                                 rest: { ASCIIPattern.isLower($0) || ASCIIPattern.isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") },
                                 length: 1...60) {
            report("provider.webhook_path", "'\(webhookPath)' is not a URL segment",
                   fix: "use lower-case letters, digits, '-' and '_' (no slashes), e.g. \"noderails\"")
        }
        guard let identifier, let verboseName, let publicName, let webhookPath else { return nil }
        return .init(identifier: identifier, verboseName: verboseName, publicName: publicName, webhookPath: webhookPath)
    }

    private func readNodeRails() -> ForgeConfig.NodeRails? {
        let api = string("noderails.api_base_url", default: defaultString("noderails.api_base_url")).flatMap { url($0, key: "noderails.api_base_url") }
        let ui = string("noderails.payment_ui_url", default: defaultString("noderails.payment_ui_url")).flatMap { url($0, key: "noderails.payment_ui_url") }
        let currency = string("noderails.currency", default: defaultString("noderails.currency"))
        if let currency, Currencies.decimalPlaces[currency] == nil {
            let hint = Currencies.decimalPlaces[currency.uppercased()] != nil ? "write it in upper case: \"\(currency.uppercased())\"" : "use an ISO 4217 code such as \"USD\" or \"EUR\""
            report("noderails.currency", "'\(currency)' is not an ISO 4217 currency code", fix: hint)
        }
        let poll = integer("noderails.poll_interval_seconds")
        let timeout = integer("noderails.http_timeout_seconds")
        let chains = readChains()
        guard let api, let ui, let currency, Currencies.decimalPlaces[currency] != nil, let poll, let timeout, let chains else { return nil }
        return .init(apiBaseURL: api, paymentUIURL: ui, currency: currency, pollIntervalSeconds: poll, httpTimeoutSeconds: timeout,
                     chains: chains)
    }

    /// `[noderails.chains]`: `<chain id> = { name = "…", explorer = "https://…/tx/{hash}" }`,
    /// explorer optional ("" or left out: the hash is shown without a link).
    private func readChains() -> [ForgeConfig.NodeRails.Chain]? {
        let key = "noderails.chains"
        let example = "8453 = { name = \"Base\", explorer = \"https://basescan.org/tx/{hash}\" }"
        guard let raw = value(key) else { return [] }
        guard let table = raw.table else {
            report(key, "expected a table of chains, found \(typeName(raw))", fix: "write it as a [noderails.chains] section with lines like \(example)")
            return nil
        }
        var chains: [ForgeConfig.NodeRails.Chain] = []
        var valid = true
        for idText in table.keys.sorted() {
            let path = "\(key).\(idText)"
            guard let id = Self.chainID(idText) else {
                report(path, "'\(idText)' is not a chain id", fix: "use the chain's decimal EVM chain id (1 to 2^53), e.g. \(example)")
                valid = false
                continue
            }
            guard let entry = table[idText]?.table else {
                report(path, "expected a table, found \(typeName(table[idText]))", fix: "write it as \(example)")
                valid = false
                continue
            }
            guard let chain = readChain(entry, id: id, path: path, example: example) else {
                valid = false
                continue
            }
            chains.append(chain)
        }
        return valid ? chains.sorted { $0.id < $1.id } : nil
    }

    private func readChain(_ entry: TOMLTable, id: Int, path: String, example: String) -> ForgeConfig.NodeRails.Chain? {
        var valid = true
        for inner in entry.keys.sorted() where !["name", "explorer"].contains(inner) {
            report("\(path).\(inner)", "unknown key", fix: "a chain has name and explorer only, e.g. \(example)")
            valid = false
        }
        if locator.valueHasNUL(path) {
            report(path, "contains a NUL character (\\u0000), which no generated file can carry", fix: "remove it")
            return nil
        }
        guard let nameValue = entry["name"] else {
            report(path, "has no name", fix: "add name = \"…\", the network name customers see, e.g. \(example)")
            return nil
        }
        guard let rawName = nameValue.string else {
            report("\(path).name", "expected a string, found \(typeName(nameValue))", fix: "quote the value")
            return nil
        }
        let name = checkText(rawName, keyPath: "\(path).name", multiline: false)
        var explorer = ""
        if let explorerValue = entry["explorer"] {
            if let text = explorerValue.string {
                explorer = text.isEmpty ? "" : explorerURL(text, key: "\(path).explorer") ?? ""
                valid = valid && (text.isEmpty || !explorer.isEmpty)
            } else {
                report("\(path).explorer", "expected a string, found \(typeName(explorerValue))", fix: "quote the value")
                valid = false
            }
        }
        guard let name, valid else { return nil }
        return .init(id: id, name: name, explorer: explorer)
    }

    /// 1 to 2^53, decimal without leading zeros: JavaScript and JSON keep every such id exact.
    static func chainID(_ text: String) -> Int? {
        guard ASCIIPattern.matches(text, first: { $0 >= UInt8(ascii: "1") && $0 <= UInt8(ascii: "9") }, rest: ASCIIPattern.isDigit, length: 1...16),
              let id = Int(text), id <= 1 << 53 else { return nil }
        return id
    }

    /// An https URL of a transaction's page: `{hash}` once, in its path or query, nothing a
    /// browser or the HTML around the link could read another way.
    private func explorerURL(_ text: String, key: String) -> String? {
        let placeholder = ForgeConfig.NodeRails.Chain.hashPlaceholder
        let fix = "write it like \"https://basescan.org/tx/{hash}\": https, with {hash} where the transaction hash goes"
        guard text.components(separatedBy: placeholder).count == 2 else {
            report(key, "'\(text)' must contain {hash} exactly once", fix: fix)
            return nil
        }
        guard text.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"\"'<>\\`|^".contains($0) }),
              let components = URLComponents(string: text.replacing(placeholder, with: "0x0")),
              components.scheme?.lowercased() == "https", let host = components.host, !host.isEmpty,
              components.user == nil, components.password == nil, components.fragment == nil else {
            report(key, "'\(text)' is not an https URL", fix: fix)
            return nil
        }
        guard !host.contains("0x0"), components.scheme == "https" else {
            report(key, "'\(text)' puts {hash} into the host or writes the scheme in capitals", fix: fix)
            return nil
        }
        guard hasValidPort(components, text: text, key: key) else { return nil }
        return text
    }

    /// URLComponents takes any digits for a port, and too many for an Int as no port at all;
    /// TCP has 1 to 65535.
    private func hasValidPort(_ components: URLComponents, text: String, key: String) -> Bool {
        guard let string = components.string, let range = components.rangeOfPort, !string[range].isEmpty else { return true }
        if let port = Int(string[range]), (1...65535).contains(port) { return true }
        report(key, "'\(text)' has port \(string[range]); ports run from 1 to 65535",
               fix: "write the port the server listens on, or leave it out (https uses 443)")
        return false
    }

    private func readWebhook() -> ForgeConfig.Webhook? {
        let payload = choice("webhook.signature_payload", of: ForgeConfig.SignaturePayload.self)
        let unit = choice("webhook.timestamp_unit", of: ForgeConfig.TimestampUnit.self)
        let tolerance = integer("webhook.tolerance_seconds")
        let confirmOn = readConfirmOn()
        guard let payload, let unit, let tolerance, let confirmOn else { return nil }
        return .init(signaturePayload: payload, timestampUnit: unit, toleranceSeconds: tolerance, confirmOn: confirmOn)
    }

    /// `confirm_on = ["authorized", "captured"]` (the default, the plugin spec's behaviour) or
    /// `["captured"]`. "captured" is always required: it is the moment the money is taken.
    private func readConfirmOn() -> [ForgeConfig.ConfirmEvent]? {
        let key = "webhook.confirm_on"
        let fix = "write confirm_on = [\"authorized\", \"captured\"] (confirm on the customer's approval, the default) "
            + "or [\"captured\"] (confirm only once the funds are taken)"
        guard let raw = value(key) else {
            guard case .strings(let names) = ConfigSchema.defaultValue(key) else { return nil }
            return names.compactMap(ForgeConfig.ConfirmEvent.init(rawValue:))
        }
        guard let array = raw.array else {
            report(key, "expected an array of event names, found \(typeName(raw))", fix: fix)
            return nil
        }
        var events: [ForgeConfig.ConfirmEvent] = []
        for index in 0..<array.count {
            guard let name = array[index].string, let event = ForgeConfig.ConfirmEvent(rawValue: name) else {
                let shown = array[index].string.map { "'\($0)'" } ?? typeName(array[index])
                report(key, "\(shown) is not a NodeRails event this key accepts (\"authorized\" or \"captured\")", fix: fix)
                return nil
            }
            guard !events.contains(event) else {
                report(key, "'\(name)' is listed twice", fix: fix)
                return nil
            }
            events.append(event)
        }
        guard events.contains(.captured) else {
            report(key, "\"captured\" must be listed: a payment whose funds were taken is always confirmed", fix: fix)
            return nil
        }
        return events.sorted()
    }

    private func readBranding() -> ForgeConfig.Branding? {
        let accent = string("branding.accent_color", default: defaultString("branding.accent_color")).flatMap { color($0, key: "branding.accent_color") }
        let text = string("branding.text_color", default: defaultString("branding.text_color")).flatMap { color($0, key: "branding.text_color") }
        let logo = readLogoWithAlt()
        var texts: [String: [String: String]] = [:]
        var textsValid = true
        for key in ForgeConfig.Branding.textKeys {
            if let translations = translations("branding.\(key)") {
                texts[key] = translations
            } else {
                textsValid = false
            }
        }
        guard let accent, let text, let logo, textsValid, legible(accent: accent, text: text) else { return nil }
        return .init(logo: logo, accentColor: accent, textColor: text, texts: texts)
    }

    /// The logo and its text alternative, which it cannot go without: a customer who cannot
    /// see the logo must still learn whose checkout this is. `.some(nil)`: no logo.
    private func readLogoWithAlt() -> ForgeConfig.Branding.Logo?? {
        let path = string("branding.logo", required: false)
        let hasAlt = value("branding.logo_alt") != nil
        let alt = hasAlt ? translations("branding.logo_alt") : nil
        guard let path else {
            if hasAlt {
                report("branding.logo_alt", "describes a logo, but branding.logo is not set", fix: "set logo = \"…\" or remove logo_alt")
                return nil
            }
            return .some(nil)
        }
        if !hasAlt {
            report("branding.logo", "a logo needs a text alternative for customers who cannot see it",
                   fix: "add logo_alt = { en = \"…\", de = \"…\" } naming what the logo shows, e.g. the organiser's name")
        }
        guard var logo = readLogo(path), let alt else { return nil }
        logo.altText = alt
        return .some(logo)
    }

    /// Reports every colour pair of the stylesheet that WCAG 2.2 AA would fail.
    private func legible(accent: String, text: String) -> Bool {
        let shortfalls = BrandContrast.shortfalls(accent: accent, text: text)
        for shortfall in shortfalls {
            let name = shortfall.key.split(separator: ".").last.map(String.init) ?? shortfall.key
            report(shortfall.key, shortfall.message,
                   fix: "use \(name) = \"\(shortfall.suggestion)\" (the nearest lightness that passes), or choose another pair")
        }
        return shortfalls.isEmpty
    }

    private func readRepository() -> ForgeConfig.Repository? {
        let unmanaged = globs("repository.unmanaged")
        let gitignore = boolean("repository.gitignore")
        let workflows = boolean("repository.workflows")
        guard let unmanaged, let gitignore, let workflows else { return nil }
        let location = SourceLocation(file: file, line: locator.line(of: "repository.unmanaged"))
        return .init(unmanaged: unmanaged, gitignore: gitignore, workflows: workflows,
                     unmanagedLocation: location)
    }

    /// An array of path patterns (see `PathGlob`); each bad one is reported with its index.
    private func globs(_ keyPath: String) -> [PathGlob]? {
        guard let raw = value(keyPath) else { return [] }
        guard let array = raw.array else {
            report(keyPath, "expected an array of path patterns, found \(typeName(raw))", fix: "write it as [\"docs/**\", \"CHANGELOG.md\"]")
            return nil
        }
        var result: [PathGlob] = []
        var valid = true
        for (index, item) in array.enumerated() {
            let path = "\(keyPath)[\(index)]"
            guard let text = item.string else {
                report(path, "expected a string, found \(typeName(item))", fix: "quote the pattern")
                valid = false
                continue
            }
            guard let glob = PathGlob(text) else {
                report(path, "'\(text)' \(PathGlob.problem(with: text) ?? "is not a path pattern")",
                       fix: "write a path relative to the tree; * matches within a folder, ** any number of folders (docs/**)")
                valid = false
                continue
            }
            result.append(glob)
        }
        return valid ? result : nil
    }

    private func boolean(_ keyPath: String) -> Bool? {
        guard case .boolean(let fallback) = ConfigSchema.defaultValue(keyPath) else { preconditionFailure("\(keyPath) has no boolean default") }
        guard let raw = value(keyPath) else { return fallback }
        guard let flag = raw.bool else {
            report(keyPath, "expected true or false, found \(typeName(raw))", fix: "write \(keyPath.split(separator: ".")[1]) = \(fallback) (without quotes)")
            return nil
        }
        return flag
    }

    /// `{ en = "…", de = "…" }`: every language code valid, "en" and "de" present.
    private func translations(_ keyPath: String) -> [String: String]? {
        guard let raw = value(keyPath) else { return ConfigSchema.defaultValue(keyPath)?.translations }
        if locator.valueHasNUL(keyPath) {
            report(keyPath, "contains a NUL character (\\u0000), which no generated file can carry", fix: "remove it")
            return nil
        }
        guard let table = raw.table else {
            report(keyPath, "expected a table of translations, found \(typeName(raw))", fix: "write it as { en = \"…\", de = \"…\" }")
            return nil
        }
        var result: [String: String] = [:]
        var valid = true
        for language in table.keys.sorted() {
            let path = "\(keyPath).\(language)"
            guard PretixLanguages.codes.contains(language) else {
                let hint = PretixLanguages.nearest(to: language).map { "did you mean '\($0)'? " } ?? ""
                report(path, "'\(language)' is not a language pretix offers",
                       fix: hint + "pretix's language codes: " + PretixLanguages.codes.joined(separator: ", "))
                valid = false
                continue
            }
            guard let textValue = table[language]?.string else {
                report(path, "expected a string, found \(typeName(table[language]))", fix: "quote the value")
                valid = false
                continue
            }
            guard let checked = checkText(textValue, keyPath: path, multiline: true) else {
                valid = false
                continue
            }
            result[language] = checked
        }
        for required in ["en", "de"] where result[required] == nil && valid && table[required] == nil {
            report(keyPath, "has no '\(required)' translation", fix: "add \(required) = \"…\"; en and de are required")
            valid = false
        }
        return valid ? result : nil
    }

    /// A hex or functional CSS colour; it is pasted into a stylesheet, so nothing else passes.
    private func color(_ text: String, key: String) -> String? {
        guard Self.isHexColor(text) || Self.isFunctionalColor(text) else {
            report(key, "'\(text)' is not a CSS colour this tool accepts", fix: "write #rrggbb (e.g. \"#2f6fed\") or rgb(47, 111, 237)")
            return nil
        }
        return text
    }

    /// #rgb, #rgba, #rrggbb or #rrggbbaa.
    static func isHexColor(_ text: String) -> Bool {
        let isHexDigit: (UInt8) -> Bool = { ASCIIPattern.isDigit($0) || (97...102).contains($0 | 0x20) }
        return text.utf8.first == UInt8(ascii: "#") && [4, 5, 7, 9].contains(text.utf8.count) && text.utf8.dropFirst().allSatisfy(isHexDigit)
    }

    /// rgb(…), rgba(…), hsl(…) or hsla(…) with three or four numbers. The regex is built only for
    /// text that starts that way: building it took a tenth of loading a config of hex colours.
    static func isFunctionalColor(_ text: String) -> Bool {
        guard text.hasPrefix("rgb") || text.hasPrefix("hsl") else { return false }
        let functional = /(rgb|rgba|hsl|hsla)\(\s*[0-9.]+%?(\s*[, ]\s*[0-9.]+%?){2}(\s*[,\/]\s*[0-9.]+%?)?\s*\)/
        return text.wholeMatch(of: functional) != nil
    }

    // The next two are plain loops rather than regex literals: a literal is compiled again
    // each time its expression runs, which made these checks a tenth of a build.

    /// local@domain.tld: no spaces, quotes, angle brackets or commas, one @, a dot in the domain.
    static func isEmailAddress(_ text: String) -> Bool {
        let allowed: (Character) -> Bool = { !$0.isWhitespace && !"@\"<>,".contains($0) }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(allowed), parts[1].allSatisfy(allowed),
              let dot = parts[1].lastIndex(of: ".") else { return false }
        let topLevel = parts[1][parts[1].index(after: dot)...]
        return dot > parts[1].startIndex && !topLevel.isEmpty
            && topLevel.utf8.allSatisfy { ASCIIPattern.isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// SPDX identifiers joined by single spaces and AND, OR or WITH.
    static func isLicenseExpression(_ text: String) -> Bool {
        let identifierByte: (UInt8) -> Bool = { ASCIIPattern.isAlphanumeric($0) || ".+-".utf8.contains($0) }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        return words.count % 2 == 1 && words.indices.allSatisfy { index in
            index % 2 == 1 ? ["AND", "OR", "WITH"].contains(words[index])
                : !words[index].isEmpty && words[index].utf8.allSatisfy(identifierByte)
        }
    }

    private func readLogo(_ path: String) -> ForgeConfig.Branding.Logo? {
        let key = "branding.logo"
        let fileExtension = URL(fileURLWithPath: path).pathExtension.lowercased()
        guard fileExtension == "svg" || fileExtension == "png" else {
            report(key, "'\(path)' is neither SVG nor PNG", fix: "export the logo as .svg or .png")
            return nil
        }
        guard let data = referencedFile(key, path, what: "the logo file") else { return nil }
        guard data.count <= 256 * 1024 else {
            report(key, "the logo is \(data.count / 1024) KiB; the limit is 256 KiB", fix: "compress or scale it down")
            return nil
        }
        if let problem = fileExtension == "png" ? LogoCheck.pngProblem(data) : LogoCheck.svgProblem(data) {
            report(key, problem, fix: fileExtension == "png" ? "export a real PNG file" : "export a plain SVG without scripts, event handlers or external references")
            return nil
        }
        return .init(fileName: "logo.\(fileExtension)", data: data, altText: [:])
    }

    // MARK: Typed values

    /// The schema's default of a string key, nil for a key without one.
    private func defaultString(_ keyPath: String) -> String? {
        guard case .string(let text) = ConfigSchema.defaultValue(keyPath) else { return nil }
        return text
    }

    private func value(_ keyPath: String) -> TOMLValueConvertible? {
        let parts = keyPath.split(separator: ".").map(String.init)
        guard let table = root[parts[0]]?.table else { return nil }
        return table[parts[1]]
    }

    /// A string value; nil (with a diagnostic when required) when absent or mistyped.
    private func string(_ keyPath: String, default fallback: String? = nil, required: Bool = true) -> String? {
        guard let raw = value(keyPath) else {
            if fallback == nil && required {
                report(keyPath, "missing required key", fix: "add \(keyPath.split(separator: ".")[1]) = \"…\" under [\(keyPath.split(separator: ".")[0])]")
            }
            return fallback
        }
        guard let string = raw.string else {
            report(keyPath, "expected a string, found \(typeName(raw))", fix: "quote the value")
            return nil
        }
        if locator.valueHasNUL(keyPath) {
            report(keyPath, "contains a NUL character (\\u0000), which no generated file can carry", fix: "remove it")
            return nil
        }
        if ConfigSchema.secretValuePrefixes.contains(where: string.hasPrefix) {
            report(keyPath, "this value looks like a NodeRails credential; secrets are never part of the config", fix: ConfigSchema.secretsFix)
            return nil
        }
        return string
    }

    /// Free text shown to people: any Unicode, but no control characters except (where
    /// allowed) line breaks. The renderers escape it for each target language.
    private func text(_ keyPath: String, multiline: Bool) -> String? {
        guard let text = string(keyPath) else { return nil }
        return checkText(text, keyPath: keyPath, multiline: multiline)
    }

    /// Free text shown to people: any Unicode, but no control characters except (where
    /// allowed) line breaks and tabs. The renderers escape it for each target language.
    private func checkText(_ text: String, keyPath: String, multiline: Bool) -> String? {
        if text.trimming(.whitespacesAndNewlines).isEmpty {
            report(keyPath, "must not be empty", fix: "write the text shown for it")
            return nil
        }
        if !multiline, text.contains(where: \.isNewline) {
            report(keyPath, "must be a single line (it becomes a metadata header)", fix: "remove the line breaks")
            return nil
        }
        // Printable ASCII first: the Unicode property lookup was most of checking a config.
        let badScalar = text.unicodeScalars.first {
            !(0x20...0x7E).contains($0.value)
                && (($0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t") || $0 == "\u{2028}" || $0 == "\u{2029}")
        }
        if let badScalar, !(multiline && (badScalar == "\u{2028}" || badScalar == "\u{2029}")) {
            report(keyPath, "contains the control character U+" + badScalar.value.hexDigits(width: 4).uppercased(), fix: "remove it")
            return nil
        }
        if text.count > 300 {
            report(keyPath, "is \(text.count) characters long; the limit is 300", fix: "shorten it")
            return nil
        }
        return text
    }

    /// An integer within the schema's range, or the schema's default when absent.
    private func integer(_ keyPath: String) -> Int? {
        let schema = ConfigSchema.key(keyPath)
        guard case .defaults(.integer(let fallback)) = schema.requirement, let range = schema.range else {
            preconditionFailure("\(keyPath) has no integer default and range in ConfigSchema")
        }
        guard let raw = value(keyPath) else { return fallback }
        guard let number = raw.int else {
            report(keyPath, "expected an integer, found \(typeName(raw))", fix: "write a whole number between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        guard range.contains(number) else {
            report(keyPath, "\(number) is out of range", fix: "use a value between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return number
    }

    private func choice<T: RawRepresentable & CaseIterable>(_ keyPath: String, of _: T.Type) -> T? where T.RawValue == String {
        guard let raw = string(keyPath, default: defaultString(keyPath)) else { return nil }
        guard let value = T(rawValue: raw) else {
            report(keyPath, "'\(raw)' is not one of the accepted values",
                   fix: "use " + T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or "))
            return nil
        }
        return value
    }

    private func canonicalVersion(_ version: String, key: String) -> String? {
        let fix = "write it like \"1.0.0\", \"1.1.0rc1\" or \"2.0.0.post1\""
        guard !version.trimming(.whitespaces).isEmpty else {
            report(key, "must not be empty", fix: fix)
            return nil
        }
        guard let canonical = PEP440.canonical(version) else {
            report(key, "'\(version)' is not a PEP 440 version (local versions with '+' are not accepted)", fix: fix)
            return nil
        }
        guard canonical == version else {
            report(key, "'\(version)' is not written in canonical PEP 440 form", fix: "write \"\(canonical)\"")
            return nil
        }
        return canonical
    }

    /// An absolute https URL without query or fragment, trailing slashes removed.
    /// With `localHTTP`, http is accepted for loopback hosts, so local simulators and tests work.
    private func url(_ text: String, key: String, localHTTP: Bool = true, example: String = "https://api.noderails.com") -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            report(key, "'\(text)' is not an absolute URL", fix: "write it like \"\(example)\"")
            return nil
        }
        let loopback = ["localhost", "127.0.0.1", "[::1]", "::1"].contains(host.lowercased())
        guard scheme == "https" || (scheme == "http" && loopback && localHTTP) else {
            report(key, "'\(text)' does not use https",
                   fix: localHTTP ? "use an https:// URL (plain http is accepted only for localhost)" : "use an https:// URL")
            return nil
        }
        guard hasValidPort(components, text: text, key: key) else { return nil }
        guard components.query == nil, components.fragment == nil, components.user == nil, components.password == nil else {
            report(key, "'\(text)' must not carry credentials, a query or a fragment", fix: "write only scheme, host, port and path")
            return nil
        }
        guard text.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"\"'<>\\`{}|^".contains($0) }) else {
            report(key, "'\(text)' contains characters that must be percent-encoded", fix: "write the URL in ASCII")
            return nil
        }
        var trimmed = text
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    private func typeName(_ value: TOMLValueConvertible?) -> String {
        guard let value else { return "nothing" }
        switch value.type {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a float"
        case .bool: return "a boolean"
        case .table: return "a table"
        case .array: return "an array"
        default: return "a date or time"
        }
    }
}
