import FoundationEssentials

extension ForgeConfig {
    /// SHA-256 of the validated values, not of the file: editing a comment or reordering keys
    /// does not change it, changing anything the render or the repository kit reads does.
    public var digest: String {
        Digest.sha256(CanonicalJSON.encode(canonicalValue)).hexString
    }

    var canonicalValue: CanonicalJSON.Value {
        let branding = self.branding
        var brandingMembers: [String: CanonicalJSON.Value] = [
            "accent_color": .string(branding.accentColor),
            "text_color": .string(branding.textColor),
            "texts": .object(branding.texts.mapValues { .object($0.mapValues { .string($0) }) }),
        ]
        if let logo = branding.logo {
            brandingMembers["logo"] = .object(["file": .string(logo.fileName), "sha256": .string(Digest.sha256(logo.data).hexString)])
        }
        var noderailsMembers: [String: CanonicalJSON.Value] = [
            "api_base_url": .string(noderails.apiBaseURL), "payment_ui_url": .string(noderails.paymentUIURL),
            "currency": .string(noderails.currency), "poll_interval_seconds": .int(noderails.pollIntervalSeconds),
            "http_timeout_seconds": .int(noderails.httpTimeoutSeconds),
        ]
        // Only when set, so that configs without chains keep the digest they had before the key existed.
        if !noderails.chains.isEmpty {
            noderailsMembers["chains"] = .object(Dictionary(uniqueKeysWithValues: noderails.chains.map {
                (String($0.id), CanonicalJSON.Value.object(["name": .string($0.name), "explorer": .string($0.explorer)]))
            }))
        }
        return .object([
            "package": .object([
                "name": .string(package.name), "module": .string(package.module), "version": .string(package.version),
                "summary": .string(package.summary), "author": .string(package.author), "author_email": .string(package.authorEmail),
                "license": .string(package.license), "license_sha256": .string(Digest.sha256(Data(package.licenseText.utf8)).hexString),
                "homepage": .string(package.homepage), "pretix_min_version": .string(package.pretixMinVersion),
            ]),
            "provider": .object([
                "identifier": .string(provider.identifier), "verbose_name": .string(provider.verboseName),
                "public_name": .string(provider.publicName), "webhook_path": .string(provider.webhookPath),
            ]),
            "noderails": .object(noderailsMembers),
            "webhook": .object([
                "signature_payload": .string(webhook.signaturePayload.rawValue), "timestamp_unit": .string(webhook.timestampUnit.rawValue),
                "tolerance_seconds": .int(webhook.toleranceSeconds),
            ]),
            "branding": .object(brandingMembers),
            "repository": .object([
                "unmanaged": .array(repository.unmanaged.map { .string($0.pattern) }),
                "gitignore": .int(repository.gitignore ? 1 : 0), "workflows": .int(repository.workflows ? 1 : 0),
            ]),
        ])
    }
}
