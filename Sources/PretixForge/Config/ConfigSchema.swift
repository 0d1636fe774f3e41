/// Every config key in one table: its type, default, range, the comment the starter config
/// (`init`, `Examples/noderails.toml`) shows above it and the rules the README's config
/// reference lists. `ConfigReader` takes defaults and ranges from here, `starterConfig` and
/// `markdownReference` are rendered from it, and tests hold both committed copies to it.
public enum ConfigSchema {
    /// A value as the starter config writes it and the reader falls back to.
    enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case strings([String])
        /// (language code, text), in the order the starter config writes them.
        case translations([(String, String)])
        /// `[noderails.chains]` entries as (chain id, name, explorer), written as one inline table.
        case chains([(Int, String, String)])

        static func == (lhs: Value, rhs: Value) -> Bool { lhs.toml == rhs.toml }

        var toml: String {
            switch self {
            case .string(let text): return Self.quoted(text)
            case .integer(let number): return String(number)
            case .boolean(let flag): return String(flag)
            case .strings(let items): return "[" + items.map(Self.quoted).joined(separator: ", ") + "]"
            case .translations(let pairs):
                let entries = pairs.map { (language, text) in
                    (language.contains("-") ? Self.quoted(language) : language) + " = " + Self.quoted(text)
                }
                return "{ " + entries.joined(separator: ", ") + " }"
            case .chains(let entries):
                let chains = entries.map { "\($0.0) = { name = \(Self.quoted($0.1)), explorer = \(Self.quoted($0.2)) }" }
                return "{ " + chains.joined(separator: ", ") + " }"
            }
        }

        var translations: [String: String]? {
            guard case .translations(let pairs) = self else { return nil }
            return Dictionary(uniqueKeysWithValues: pairs)
        }

        /// A TOML basic string; the stock values hold no character that needs more than these escapes.
        /// Most hold neither: those skip `replacing`, whose generic search showed in every start.
        private static func quoted(_ text: String) -> String {
            guard text.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") }) else { return "\"" + text + "\"" }
            return "\"" + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        }
    }

    enum Requirement: Sendable {
        /// The config must set it; the starter config shows `stock`.
        case required
        /// Left out, the key takes this value; the starter config writes it out.
        case defaults(Value)
        /// Left out, the key takes a value described here (e.g. another key's); the starter shows `stock`.
        case derived(String)
        /// Left out, the feature is off; the starter config shows `stock` commented out.
        case optional
    }

    struct Key: Sendable {
        var table: String
        var name: String
        var requirement: Requirement
        /// What the starter config writes for a key that has no default value of its own.
        var stock: Value?
        /// The integer range a value must fall in.
        var range: ClosedRange<Int>?
        /// Comment lines above the key in the starter config.
        var help: [String]
        /// The README's rules column.
        var rules: String

        var path: String { "\(table).\(name)" }

        var starterValue: Value? {
            if case .defaults(let value) = requirement { return value }
            return stock
        }
    }

    static let starterHeader = """
        # pretix-forge configuration: the stock NodeRails crypto checkout plugin for pretix.
        #
        # Generate the plugin tree:   pretix-forge generate --config forge.toml
        # Build sdist and wheel:      pretix-forge build --config forge.toml
        #
        # Secrets (NodeRails app id, API key, webhook signing secret) never belong here:
        # the organiser enters them in pretix under Settings → Payment.
        """

    static let tableNames = ["package", "provider", "noderails", "webhook", "branding", "repository"]

    static let keys: [Key] = package + provider + noderails + webhook + branding + repository

    /// The keys each table accepts, in documentation order.
    static var tables: [(name: String, keys: [String])] {
        tableNames.map { table in (table, keys.filter { $0.table == table }.map(\.name)) }
    }

    static func key(_ path: String) -> Key {
        guard let key = keys.first(where: { $0.path == path }) else {
            preconditionFailure("\(path) is not in ConfigSchema.keys")
        }
        return key
    }

    static func defaultValue(_ path: String) -> Value? {
        if case .defaults(let value) = key(path).requirement { return value }
        return nil
    }

    // MARK: The tables

    private static let package: [Key] = [
        Key(table: "package", name: "name", requirement: .required, stock: .string("pretix-noderails"),
            help: ["Distribution name on PyPI (PEP 508 name)."],
            rules: "PEP 508 distribution name, e.g. `pretix-noderails`"),
        Key(table: "package", name: "module", requirement: .required, stock: .string("pretix_noderails"),
            help: ["Python package and Django app label. Must be a Python identifier that does not shadow",
                   "a standard-library, Django or pretix module. Two variants in one pretix need two modules."],
            rules: "lower-case Python identifier; not a keyword; must not shadow a standard-library, Django, pretix or "
                + "pretix-dependency module. Also the Django app label, so not the label of an app pretix installs "
                + "(`stripe`, `banktransfer`, `auth`, …)."),
        Key(table: "package", name: "version", requirement: .required, stock: .string("1.0.0"),
            help: ["PEP 440 version."],
            rules: "PEP 440 in canonical form (`1.0.0`, `1.1.0rc1`, `2.0.0.post1`); local versions refused"),
        Key(table: "package", name: "summary", requirement: .required,
            stock: .string("Accept crypto payments in pretix through NodeRails hosted checkout."),
            help: ["One line shown on PyPI and in pretix's plugin list."],
            rules: "one line of free text"),
        Key(table: "package", name: "author", requirement: .required, stock: .string("NodeRails"),
            help: [], rules: "one line of free text"),
        Key(table: "package", name: "author_email", requirement: .required, stock: .string("support@noderails.com"),
            help: [], rules: "e-mail address"),
        Key(table: "package", name: "license", requirement: .defaults(.string("Apache-2.0")),
            help: ["SPDX license expression. Apache-2.0 ships with pretix-forge; any other needs license_file,",
                   "a path relative to this file."],
            rules: "SPDX expression (text shipped for `Apache-2.0`). Any other needs `license_file`."),
        Key(table: "package", name: "license_file", requirement: .optional,
            help: [], rules: "path to the license text, relative to the config file"),
        Key(table: "package", name: "homepage", requirement: .required,
            stock: .string("https://github.com/noderails/pretix-noderails"),
            help: [], rules: "https URL (published on PyPI, so not http even for localhost), no query, fragment or credentials"),
        Key(table: "package", name: "pretix_min_version", requirement: .defaults(.string(Compatibility.embedded.oldestPretix)),
            help: ["Oldest pretix release the plugin declares itself compatible with."],
            rules: "PEP 440; no older than the default, the oldest pretix in `compat.toml` (the oldest `make test` proves); "
                + "becomes the plugin's `compatibility`"),
    ]

    private static let provider: [Key] = [
        Key(table: "provider", name: "identifier", requirement: .required, stock: .string("noderails"),
            help: ["Payment provider identifier inside pretix (settings keys are payment_<identifier>_*)."],
            rules: "`[a-z][a-z0-9_]`, ≤ 40; pretix settings keys are `payment_<identifier>_*`, so not the identifier "
                + "of a provider pretix ships (`banktransfer`, `stripe`, `giftcard`, …)"),
        Key(table: "provider", name: "verbose_name", requirement: .required, stock: .string("NodeRails Payments"),
            help: ["Name shown to organisers in pretix's backend."],
            rules: "free text shown to organisers"),
        Key(table: "provider", name: "public_name", requirement: .required, stock: .string("Pay with crypto"),
            help: ["Name shown to customers on the payment step."],
            rules: "free text shown to customers (e.g. `Pay with crypto`)"),
        Key(table: "provider", name: "webhook_path", requirement: .derived("the identifier"), stock: .string("noderails"),
            help: ["URL segment of the webhook: https://YOUR-PRETIX/<organizer>/<event>/<webhook_path>/webhook/",
                   "Defaults to the identifier."],
            rules: "URL segment: `/<organizer>/<event>/<webhook_path>/webhook/`"),
    ]

    private static let noderails: [Key] = [
        Key(table: "noderails", name: "api_base_url", requirement: .defaults(.string("https://api.noderails.com")),
            help: ["NodeRails REST API. https only (http is accepted for localhost and 127.0.0.1)."],
            rules: "https (http only for localhost/127.0.0.1/::1), no query, fragment or credentials; a port, if any, 1–65535"),
        Key(table: "noderails", name: "payment_ui_url", requirement: .defaults(.string("https://pay.noderails.com")),
            help: ["Origin of the hosted checkout shown in the iframe: <payment_ui_url>/checkout/<sessionId>."],
            rules: "same; the iframe shows `<payment_ui_url>/checkout/<sessionId>`"),
        Key(table: "noderails", name: "currency", requirement: .defaults(.string("USD")),
            help: ["ISO 4217 currency the provider accepts; it is offered only for events in this currency."],
            rules: "ISO 4217 code; the provider is offered only for events in this currency"),
        Key(table: "noderails", name: "poll_interval_seconds", requirement: .defaults(.integer(3)), range: 1...60,
            help: ["How often the confirm page asks whether the payment arrived (1–60 s)."],
            rules: "1–60"),
        Key(table: "noderails", name: "http_timeout_seconds", requirement: .defaults(.integer(10)), range: 1...30,
            help: ["Timeout of every call to NodeRails (1–30 s), so a slow upstream cannot wedge a worker."],
            rules: "1–30"),
        Key(table: "noderails", name: "chains", requirement: .optional,
            stock: .chains([(324, "zkSync Era", "https://explorer.zksync.io/tx/{hash}")]),
            help: ["Chains beyond (or instead of) the plugin's built-in table of chain names and block explorers,",
                   "by EVM chain id: the network name people see, and an https explorer URL with {hash} where",
                   "the transaction hash goes (left out or \"\": the hash is shown without a link)."],
            rules: "chain id → `{ name = \"…\", explorer = \"https://…/tx/{hash}\" }`, also written as a "
                + "`[noderails.chains]` table; see [`[noderails.chains]`](#noderailschains) below"),
    ]

    private static let webhook: [Key] = [
        Key(table: "webhook", name: "signature_payload", requirement: .defaults(.string("timestamp.body")),
            help: ["What the HMAC-SHA256 signature covers: \"timestamp.body\" signs \"<timestamp>.<raw body>\"",
                   "(the plugin spec); \"body\" signs the raw body alone (NodeRails' webhook docs)."],
            rules: "`timestamp.body`: HMAC over `<timestamp>.<raw body>` (plugin spec); `body`: raw body only "
                + "(NodeRails docs); see `docs/noderails-contract.md`"),
        Key(table: "webhook", name: "timestamp_unit", requirement: .defaults(.string("ms")),
            help: ["Unit of the x-noderails-timestamp header: \"ms\" or \"s\"."],
            rules: "`ms` or `s`, the unit of `x-noderails-timestamp`"),
        Key(table: "webhook", name: "tolerance_seconds", requirement: .defaults(.integer(300)), range: 30...3600,
            help: ["Deliveries whose timestamp is further than this from the server clock are refused (30–3600 s)."],
            rules: "30–3600; deliveries further from the server clock are refused"),
        Key(table: "webhook", name: "confirm_on", requirement: .defaults(.strings(["authorized", "captured"])),
            help: ["Which NodeRails events confirm a payment: [\"authorized\", \"captured\"] confirms on the customer's",
                   "approval already (the plugin spec); [\"captured\"] waits until the funds are taken from the wallet."],
            rules: "which NodeRails events confirm a payment: `[\"authorized\", \"captured\"]` (plugin spec) or "
                + "`[\"captured\"]`; `\"captured\"` is required. With `[\"captured\"]` only the capture webhook "
                + "confirms: Place order and the reconciliation leave the payment pending, since NodeRails' public "
                + "session cannot tell approval from capture, so the webhook must reach pretix"),
    ]

    private static let branding: [Key] = [
        Key(table: "branding", name: "logo", requirement: .optional, stock: .string("logo.svg"),
            help: ["Optional logo shown above the checkout: an SVG (no scripts, event handlers or external",
                   "references) or PNG of at most 256 KiB, path relative to this file."],
            rules: "SVG or PNG, ≤ 256 KiB, path relative to the config file; SVGs with scripts, event handlers, "
                + "`foreignObject` or external references are refused. Copied to `static/<module>/` as `logo.svg` or `logo.png` and "
                + "shown above the checkout."),
        Key(table: "branding", name: "logo_alt", requirement: .optional,
            stock: .translations([("en", "NodeRails"), ("de", "NodeRails")]),
            help: ["What the logo shows, for customers who cannot see it; required with a logo."],
            rules: "required with `logo`: a table of translations like the texts below (`en` and `de` required): what "
                + "the logo shows, e.g. the organiser's name. It is the image's text alternative for customers who "
                + "cannot see it"),
        Key(table: "branding", name: "accent_color", requirement: .defaults(.string("#2f6fed")),
            help: ["Accent and text colour of the confirm page's status banner: #rrggbb or rgb(r, g, b).",
                   "Text on the accent needs a contrast of 4.5:1, the accent on a white page 3:1 (WCAG 2.2 AA)."],
            rules: "`#rgb`, `#rrggbb`, `#rrggbbaa` or `rgb()/rgba()/hsl()/hsla()`; pasted into the plugin's "
                + "stylesheet, so nothing else passes. It must stay legible (WCAG 2.2 AA): at least 3:1 on pretix's "
                + "white page (it draws the heading rule, the banner border and the focus ring) and 4.5:1 under "
                + "`text_color`; alpha colours count as blended over what they sit on. A pair below that is an error "
                + "with the measured ratio and the nearest lightness that passes"),
        Key(table: "branding", name: "text_color", requirement: .defaults(.string("#ffffff")),
            help: [],
            rules: "like `accent_color`; text on the accent, at least 4.5:1 against it"),
        text("payment_description", help: [
            "Customer-facing texts, one translation per language code; en and de are required.",
            "pretix shows the customer's language, falling back to English.",
            "Shown under the payment method on the payment step.",
        ], shown: "under the payment method on the payment step",
             stock: [
            ("en", "Pay with cryptocurrency through NodeRails. The secure NodeRails checkout opens on the next page; your order is placed once the payment has arrived."),
            ("de", "Bezahlen Sie mit Kryptowährung über NodeRails. Der sichere NodeRails-Checkout öffnet sich auf der nächsten Seite; Ihre Bestellung wird abgeschlossen, sobald die Zahlung eingegangen ist."),
            ("de-informal", "Bezahle mit Kryptowährung über NodeRails. Der sichere NodeRails-Checkout öffnet sich auf der nächsten Seite; deine Bestellung wird abgeschlossen, sobald die Zahlung eingegangen ist."),
        ]),
        text("confirm_heading", help: ["Heading above the checkout on the confirm page."],
             shown: "as the heading above the checkout on the confirm page",
             stock: [
            ("en", "Complete your crypto payment"),
            ("de", "Schließen Sie Ihre Krypto-Zahlung ab"),
            ("de-informal", "Schließe deine Krypto-Zahlung ab"),
        ]),
        text("confirm_instructions", help: ["Instructions under that heading."],
             shown: "under that heading",
             stock: [
            ("en", "Pay in the NodeRails checkout below. As soon as your payment is detected, you can place your order."),
            ("de", "Bezahlen Sie im NodeRails-Checkout unten. Sobald Ihre Zahlung erkannt wurde, können Sie Ihre Bestellung abschließen."),
            ("de-informal", "Bezahle im NodeRails-Checkout unten. Sobald deine Zahlung erkannt wurde, kannst du deine Bestellung abschließen."),
        ]),
        text("waiting_message", help: ["While the payment is not yet detected."],
             shown: "while the payment is not yet detected",
             stock: [
            ("en", "Waiting for your payment…"),
            ("de", "Warten auf Ihre Zahlung …"),
            ("de-informal", "Warten auf deine Zahlung …"),
        ]),
        text("success_message", help: ["Once the payment is detected."],
             shown: "once the payment is detected",
             stock: [
            ("en", "Payment received. You can now place your order."),
            ("de", "Zahlung erhalten. Sie können Ihre Bestellung jetzt abschließen."),
            ("de-informal", "Zahlung erhalten. Du kannst deine Bestellung jetzt abschließen."),
        ]),
        text("failure_message", help: ["When NodeRails reports the payment failed or expired."],
             shown: "when NodeRails reports the payment failed or expired",
             stock: [
            ("en", "The payment did not go through and you have not been charged. Please try again or choose another payment method."),
            ("de", "Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte versuchen Sie es erneut oder wählen Sie eine andere Zahlungsart."),
            ("de-informal", "Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte versuche es erneut oder wähle eine andere Zahlungsart."),
        ]),
        text("pending_email_text", help: [
            "In the order e-mail while the crypto payment is still being confirmed; {order_url} is replaced by",
            "the link to the order page, where the customer can pay again (added at the end if left out).",
        ], shown: "in the order e-mail while the payment is being confirmed ({order_url}: the order page's link)",
             stock: [
            ("en", "If you have completed your crypto payment, it is being confirmed now; you will receive another e-mail as soon as it has been confirmed. If it did not go through, you can pay again on your order page: {order_url}"),
            ("de", "Wenn Sie Ihre Krypto-Zahlung abgeschlossen haben, wird sie gerade bestätigt; Sie erhalten eine weitere E-Mail, sobald sie bestätigt ist. Falls sie nicht durchgegangen ist, können Sie auf Ihrer Bestellseite erneut bezahlen: {order_url}"),
            ("de-informal", "Wenn du deine Krypto-Zahlung abgeschlossen hast, wird sie gerade bestätigt; du erhältst eine weitere E-Mail, sobald sie bestätigt ist. Falls sie nicht durchgegangen ist, kannst du auf deiner Bestellseite erneut bezahlen: {order_url}"),
        ]),
        text("invoice_text", help: [
            "The payment note on the invoice of a paid order; {method}, {network} and {tx_hash} are",
            "replaced by the payment method's public name, the chain's name and the transaction hash.",
        ], shown: "on a paid order's invoice ({method}, {network}, {tx_hash} filled in)",
             stock: [
            ("en", "Paid with {method} on {network}. Transaction hash: {tx_hash}"),
            ("de", "Bezahlt mit {method} im Netzwerk {network}. Transaktions-Hash: {tx_hash}"),
            ("de-informal", "Bezahlt mit {method} im Netzwerk {network}. Transaktions-Hash: {tx_hash}"),
        ]),
    ]

    private static let repository: [Key] = [
        Key(table: "repository", name: "unmanaged", requirement: .defaults(.strings([])),
            help: ["The tree can live in a git repository of its own: generate --out into it touches only the",
                   "files pretix-forge manages (listed in .pretix-forge.json), never .git/ or files of yours.",
                   "Paths that are yours and pretix-forge must never claim, as patterns relative to the tree:",
                   "* matches within a folder, ** any number of folders. check --tree does not list them."],
            rules: "path patterns relative to the tree for files that are yours (`docs/**`, `CHANGELOG.md`): `*` "
                + "matches within a folder, `?` one character, a `**` segment any number of folders; no leading `/`, "
                + "`..`, `[ ]`, `{ }` or `!`. pretix-forge never writes or adopts them and `check --tree` does not list "
                + "them; a pattern matching a file pretix-forge produces is an error."),
        Key(table: "repository", name: "gitignore", requirement: .defaults(.boolean(true)),
            help: ["Write a .gitignore for Python and pretix plugin work (it keeps the compiled .mo files)."],
            rules: "write `.gitignore` for Python and pretix plugin work (it does not ignore the shipped `.mo` files)"),
        Key(table: "repository", name: "workflows", requirement: .defaults(.boolean(true)),
            help: ["Write GitHub workflows: tests.yml (unit tests on every claimed Python, tests inside the",
                   "oldest and the newest pretix), check.yml (the tree matches its config) and release.yml",
                   "(on a v* tag: reproducible build, check, PyPI trusted publishing, GitHub release)."],
            rules: "write `.github/workflows/` `tests.yml`, `check.yml`, `release.yml` and the action they share, "
                + "`.github/actions/pretix-forge/`"),
    ]

    /// Keys earlier versions read and this one does not: each names what replaced it.
    static let retiredKeys: [String: String] = [
        "repository.forge_repository": "delete this line: the workflows now install the recorded pretix-forge with "
            + "`pip install pretix-forge==<version>` instead of building it from its source repository",
    ]

    private static func text(_ name: String, help: [String], shown: String, stock: [(String, String)]) -> Key {
        Key(table: "branding", name: name, requirement: .defaults(.translations(stock)), help: help,
            rules: "shown \(shown): a table of translations, e.g. `{ en = \"…\", de = \"…\" }`; `en` and `de` are "
                + "required, other pretix language codes allowed")
    }
}

/// Credentials are never config: these mark a key or value as one.
extension ConfigSchema {
    /// Key fragments that mark a credential. Credentials are entered per event in pretix,
    /// where they are stored as secrets and never rendered back; a config file gets committed.
    static let secretMarkers = ["secret", "api_key", "apikey", "app_id", "appid", "password", "token", "private_key"]

    /// Value prefixes of NodeRails credentials.
    static let secretValuePrefixes = ["whsec_", "nr_live_", "nr_test_", "sk_live_", "sk_test_"]

    /// Byte searches: this runs for every key of every config, where the standard library's
    /// generic substring search was a tenth of a config load.
    static func isSecretKey(_ key: String) -> Bool {
        let lowered = ArraySlice(key.lowercased().utf8)
        return secretMarkerBytes.contains { ASCIIPattern.occurrences(of: $0, in: lowered) > 0 }
    }

    private static let secretMarkerBytes = secretMarkers.map { Array($0.utf8) }

    static let secretsFix = "remove it: app ids, API keys and webhook secrets are entered by the organiser in pretix "
        + "(event → Settings → Payment), where they are stored as secrets and never shown again"
}

/// The two documents rendered from the table.
extension ConfigSchema {
    /// The commented starter config: every key with its comment, optional features commented out.
    static var starterConfig: String {
        var lines = [starterHeader]
        for table in tableNames {
            lines += ["", "[\(table)]"]
            for key in keys where key.table == table {
                guard let value = key.starterValue else { continue }
                lines += key.help.map { "# \($0)" }
                let assignment = "\(key.name) = \(value.toml)"
                if case .optional = key.requirement {
                    lines.append("# " + assignment)
                } else {
                    lines.append(assignment)
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The README's config reference: one table per config table, a row per key.
    public static var markdownReference: String {
        var sections: [String] = []
        for table in tableNames {
            var rows = ["### `[\(table)]`", "| key | default | rules |", "|---|---|---|"]
            for key in keys where key.table == table {
                rows.append("| `\(key.name)` | \(defaultDescription(key)) | \(key.rules) |")
            }
            sections.append(rows.joined(separator: "\n"))
        }
        return sections.joined(separator: "\n\n") + "\n"
    }

    private static func defaultDescription(_ key: Key) -> String {
        switch key.requirement {
        case .required: return "required"
        case .optional: return "none"
        case .derived(let description): return description
        case .defaults(.translations(let pairs)): return "stock texts in " + pairs.map { "`\($0.0)`" }.joined(separator: ", ")
        case .defaults(.string(let text)): return "`\(text)`"
        case .defaults(let value): return "`\(value.toml)`"
        }
    }
}
