import Foundation
import Testing
@testable import PretixForge

@Suite("Config: one schema drives validation, the starter config and the README")
struct ConfigSchemaTests {
    /// The config a source loads to, with the one field that records where a key was written
    /// (and so differs whenever the key is left out) made equal.
    private func loaded(_ source: String) throws -> ForgeConfig {
        var config = try ConfigLoader.load(source: source, file: "forge.toml", baseDirectory: nil)
        config.repository.unmanagedLocation = SourceLocation(file: "forge.toml")
        return config
    }

    /// The starter config written with the keys that have no default of their own only.
    private var requiredKeysOnly: String {
        var lines: [String] = []
        for table in ConfigSchema.tableNames {
            lines.append("[\(table)]")
            for key in ConfigSchema.keys where key.table == table {
                if case .required = key.requirement, let value = key.stock {
                    lines.append("\(key.name) = \(value.toml)")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func theStockConfigWithEveryOptionalKeyRemovedLoadsToTheSameConfig() throws {
        let stock = try loaded(ConfigLoader.defaultSource)
        let bare = requiredKeysOnly
        #expect(!bare.contains("currency") && !bare.contains("signature_payload") && !bare.contains("tolerance_seconds"))
        #expect(try loaded(bare) == stock)
        // And one key at a time, so a default that only holds together with another one shows.
        for key in ConfigSchema.keys {
            switch key.requirement {
            case .required, .optional: continue
            case .defaults, .derived:
                let source = config(replacing: [key.name: ""])
                #expect(!source.contains("\n\(key.name) ="), "\(key.path) was not removed")
                #expect(try loaded(source) == stock, "\(key.path)")
            }
        }
    }

    @Test func theIntegerRangesOfTheSchemaAreWhatValidationEnforces() throws {
        let integers = ConfigSchema.keys.filter { $0.range != nil }
        #expect(integers.map(\.path) == ["noderails.poll_interval_seconds", "noderails.http_timeout_seconds", "webhook.tolerance_seconds"])
        for key in integers {
            let range = try #require(key.range)
            for inside in [range.lowerBound, range.upperBound] {
                #expect(diagnostics(of: config(replacing: [key.name: String(inside)])).isEmpty, "\(key.path) = \(inside)")
            }
            for outside in [range.lowerBound - 1, range.upperBound + 1] {
                let problems = diagnostics(of: config(replacing: [key.name: String(outside)]))
                #expect(problems.map(\.keyPath) == [key.path], "\(key.path) = \(outside)")
                #expect(problems.first?.fix == "use a value between \(range.lowerBound) and \(range.upperBound)")
            }
        }
    }

    @Test func everyKeyValidationKnowsIsDocumented() {
        let documented = Set(ConfigSchema.keys.map(\.path))
        #expect(documented.count == ConfigSchema.keys.count, "a key is listed twice")
        for key in ConfigSchema.keys {
            #expect(!key.rules.isEmpty, "\(key.path) has no rules for the README")
            #expect(!key.rules.contains("|"), "\(key.path): a | would split the README's table row")
        }
        // Every key the stock starter config writes is one the schema lists, and the reverse for keys with a value.
        let written = ConfigLoader.defaultSource.split(separator: "\n").compactMap { line -> String? in
            KeyLocator.assignedKey(line.hasPrefix("# ") ? String(line.dropFirst(2)) : String(line))
        }
        #expect(Set(written) == Set(ConfigSchema.keys.filter { $0.starterValue != nil }.map(\.name)))
    }

    @Test func theStarterConfigOnDiskIsTheOneRenderedFromTheSchema() throws {
        let onDisk = try String(contentsOf: Repo.url("Examples/noderails.toml"), encoding: .utf8)
        #expect(onDisk == ConfigSchema.starterConfig, "Examples/noderails.toml drifted from ConfigSchema.swift: run `make docs`")
    }

    @Test func theReadmeReferenceIsTheOneRenderedFromTheSchema() throws {
        let readme = try String(contentsOf: Repo.url("README.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- config-reference:"))
        let start = try #require(readme[begin.upperBound...].firstIndex(of: "\n"))
        let end = try #require(readme.range(of: "<!-- end of config-reference -->"))
        #expect(String(readme[readme.index(after: start)..<end.lowerBound]) == ConfigSchema.markdownReference,
                "the README's config reference drifted from ConfigSchema.swift: run `make docs`")
    }
}
