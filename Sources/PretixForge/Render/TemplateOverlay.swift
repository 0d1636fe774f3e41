import Foundation

extension TemplateSet {
    /// The built-in templates with files from `directory` replacing those at the same relative
    /// path. A file that matches no built-in template is an error: it is almost always a typo,
    /// and silently adding it would ship a file nobody reviews as part of the plugin.
    public func overlaid(with directory: String) throws(ForgeError) -> TemplateSet {
        let overlay = try DriftCheck.readTree(directory)
        var problems: [Diagnostic] = []
        var files = self.files
        for (path, data) in overlay.sorted(by: { $0.key < $1.key }) {
            guard files[path] != nil else {
                let hint = Suggestions.closest(to: path, in: Array(files.keys)).map { "did you mean \($0)?" }
                problems.append(Diagnostic("matches no built-in template", at: SourceLocation(file: "\(directory)/\(path)"),
                                           fix: hint ?? "overlay files must mirror Templates/ (module folder written as __module__)"))
                continue
            }
            files[path] = data
        }
        if !problems.isEmpty { throw ForgeError(problems) }
        return TemplateSet(files: files)
    }
}
