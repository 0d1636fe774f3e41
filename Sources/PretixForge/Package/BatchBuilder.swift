import FoundationEssentials
import Dispatch

/// Builds many variants at once on every core, carrying on past failures.
public enum BatchBuilder {
    public enum Progress: Sendable {
        case started
        case finished(Distribution)
        case failed(ForgeError)
    }

    public struct Variant: Sendable {
        /// The config file, or nil for the embedded default.
        public var configPath: String?
        public var result: Result<Distribution, ForgeError>

        public var label: String { configPath ?? ConfigLoader.embeddedDefaultName }
    }

    /// Expands folders into the `*.toml` files they hold (sorted), keeping order otherwise.
    public static func expandConfigPaths(_ paths: [String]) throws(ForgeError) -> [String] {
        var result: [String] = []
        for path in paths {
            var isDirectory = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                result.append(path)  // reported by the loader, with the other failures
                continue
            }
            guard isDirectory else {
                result.append(path)
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let configs = names.filter { $0.hasSuffix(".toml") }.sorted().map { "\(path)/\($0)" }
            if configs.isEmpty {
                throw ForgeError("the folder holds no .toml configs", at: SourceLocation(file: path))
            }
            result += configs
        }
        return result
    }

    public static func build(configPaths: [String?], templates: TemplateSet, environment: [String: String],
                             progress: @escaping @Sendable (Int, Progress) -> Void) -> [Variant] {
        let results = ConcurrentSlots<Result<Distribution, ForgeError>>(count: configPaths.count)
        let renderer = Result { () throws(ForgeError) in try PluginRenderer(templates: templates) }
        DispatchQueue.concurrentPerform(iterations: configPaths.count) { index in
            progress(index, .started)
            let outcome = Result { () throws(ForgeError) -> Distribution in
                let config = try Pipeline.loadConfig(configPaths[index])
                let tree = try renderer.get().render(config)
                return try Pipeline.distribution(config, tree: tree, environment: environment)
            }
            switch outcome {
            case .success(let distribution): progress(index, .finished(distribution))
            case .failure(let error): progress(index, .failed(error))
            }
            results.set(index, outcome)
        }
        var variants = zip(configPaths, results.values).map { Variant(configPath: $0, result: $1!) }
        markNameClashes(&variants)
        return variants
    }

    /// Two variants writing the same file name would overwrite each other in dist/.
    private static func markNameClashes(_ variants: inout [Variant]) {
        var owner: [String: String] = [:]
        for index in variants.indices {
            guard case .success(let distribution) = variants[index].result else { continue }
            if let first = owner[distribution.sdistName] {
                variants[index].result = .failure(ForgeError(
                    "produces \(distribution.sdistName), as \(first) does", at: SourceLocation(file: variants[index].label),
                    keyPath: "package.name", fix: "give each variant its own package name (and module)"))
            } else {
                owner[distribution.sdistName] = variants[index].label
            }
        }
    }
}
