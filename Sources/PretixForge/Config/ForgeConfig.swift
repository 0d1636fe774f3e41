import FoundationEssentials

/// The typed configuration of one plugin variant. Every value here has been validated:
/// renderers may rely on identifiers being safe to paste into Python, URLs and paths.
public struct ForgeConfig: Sendable, Equatable {
    public struct Package: Sendable, Equatable {
        public var name: String
        public var module: String
        public var version: String
        public var summary: String
        public var author: String
        public var authorEmail: String
        public var license: String
        /// Text of the LICENSE file: the embedded Apache-2.0 text or the organiser's file.
        public var licenseText: String
        public var homepage: String
        public var pretixMinVersion: String

        /// PEP 503 / PEP 625 normalised name used in archive file names.
        public var normalizedName: String {
            PythonNames.normalizedDistributionName(name)
        }
    }

    public struct Provider: Sendable, Equatable {
        public var identifier: String
        public var verboseName: String
        public var publicName: String
        public var webhookPath: String
    }

    public struct NodeRails: Sendable, Equatable {
        public var apiBaseURL: String
        public var paymentUIURL: String
        public var currency: String
        public var pollIntervalSeconds: Int
        public var httpTimeoutSeconds: Int
        /// `[noderails.chains]`, sorted by id: added to the plugin's built-in chain table, or
        /// replacing its entry for the same id.
        public var chains: [Chain] = []

        /// A chain NodeRails may settle on, as customers and organisers see it.
        public struct Chain: Sendable, Equatable {
            public var id: Int
            public var name: String
            /// https URL of a transaction's page with `{hash}` where the hash goes; "" shows
            /// the hash without a link.
            public var explorer: String

            public static let hashPlaceholder = "{hash}"
        }
    }

    public enum SignaturePayload: String, Sendable, CaseIterable {
        /// HMAC over "<timestamp>.<raw body>", as the plugin spec describes (docs/noderails-contract.md).
        case timestampDotBody = "timestamp.body"
        /// HMAC over the raw body alone, as NodeRails' webhook page shows (docs/noderails-contract.md).
        case body
    }

    public enum TimestampUnit: String, Sendable, CaseIterable {
        case milliseconds = "ms"
        case seconds = "s"
    }

    /// NodeRails events that may confirm a payment. NodeRails' contract calls "authorized" the
    /// customer's approval to pull the money and "captured" the moment the funds are taken.
    public enum ConfirmEvent: String, Sendable, CaseIterable, Comparable {
        case authorized
        case captured

        public static func < (lhs: Self, rhs: Self) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    public struct Webhook: Sendable, Equatable {
        public var signaturePayload: SignaturePayload
        public var timestampUnit: TimestampUnit
        public var toleranceSeconds: Int
        /// Sorted, without duplicates, always containing `.captured`.
        public var confirmOn: [ConfirmEvent]
    }

    /// Customer-facing look and words. Every text carries its translations by language code
    /// ("en" and "de" at least); pretix shows the one matching the customer's language.
    public struct Branding: Sendable, Equatable {
        public struct Logo: Sendable, Equatable {
            /// "logo.svg" or "logo.png": the name inside the plugin's static folder.
            public var fileName: String
            public var data: Data
            /// The logo's text alternative, language code → text; screen readers read it out.
            public var altText: [String: String]
        }

        public var logo: Logo?
        public var accentColor: String
        public var textColor: String
        /// Text key (see `Branding.textKeys`) → language code → text.
        public var texts: [String: [String: String]]

        public static let textKeys = [
            "payment_description", "confirm_heading", "confirm_instructions", "waiting_message", "success_message", "failure_message",
            "pending_email_text", "invoice_text",
        ]
    }

    /// How the tree lives in its own git repository: which files pretix-forge must never claim,
    /// and whether it writes the repository kit (.gitignore, GitHub workflows).
    public struct Repository: Sendable, Equatable {
        /// Paths the maintainer keeps by hand; pretix-forge never writes, adopts or reports them.
        public var unmanaged: [PathGlob]
        public var gitignore: Bool
        public var workflows: Bool
        /// Where `unmanaged` is written, for problems only a render can reveal.
        public var unmanagedLocation: SourceLocation
    }

    public var package: Package
    public var provider: Provider
    public var noderails: NodeRails
    public var webhook: Webhook
    public var branding: Branding
    public var repository: Repository
}
