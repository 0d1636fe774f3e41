import ArgumentParser
import FoundationEssentials
import PretixForge

struct PackageSelf: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package-self",
        abstract: "Package this pretix-forge binary as the platform wheel `pip install pretix-forge` installs.",
        discussion: """
            The binary must be the static release build (`make dist` makes it and runs this): a wheel may load nothing \
            but glibc from the system, and it ships the licences of what it links (--licenses). Its manylinux tag is \
            read from the binary. SOURCE_DATE_EPOCH sets the archive times, as for `build`; the same binary and licences \
            give the same wheel, byte for byte.
            """
    )

    @Option(help: ArgumentHelp("The binary to package. Default: this one.", valueName: "file"))
    var binary: String = "/proc/self/exe"

    @Option(help: ArgumentHelp("The long description PyPI shows.", valueName: "file"))
    var readme: String = "README.md"

    @Option(help: ArgumentHelp(
        "The licences of what the binary links, as scripts/licenses.py writes them (make dist: .build-release/licenses).",
        valueName: "dir"))
    var licenses: String

    @Option(help: ArgumentHelp("Output folder; other files in it are kept.", valueName: "dir"))
    var out: String = "dist"

    func run() throws {
        guard let executable = FileManager.default.contents(atPath: binary) else {
            throw ForgeError("cannot read the binary", at: SourceLocation(file: binary), keyPath: "--binary",
                             fix: "pass the path of a pretix-forge build, e.g. .build/release/pretix-forge")
        }
        guard let readmeData = FileManager.default.contents(atPath: readme) else {
            throw ForgeError("cannot read the README", at: SourceLocation(file: readme), keyPath: "--readme",
                             fix: "run this from the pretix-forge checkout, or pass --readme FILE")
        }
        let bundled = try BundledLicenses(folder: licenses)
        let timestamp = try DistributionBuilder.timestamp(from: ProcessInfo.processInfo.environment)
        let wheel = try ToolWheel(binary: executable, readme: String(decoding: readmeData, as: UTF8.self), licenses: bundled,
                                  timestamp: timestamp)
        try AtomicOutput.update(out, with: [wheel.name: wheel.data])
        print(wheel.checksum, terminator: "")
    }
}
