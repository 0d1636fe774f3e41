import Foundation
import Testing
@testable import PretixForge

@Suite("Package: pretix-forge's own wheel")
struct ToolWheelTests {
    /// This test process: a dynamically linked Linux executable, like the debug build.
    static let ownExecutable = FileManager.default.contents(atPath: "/proc/self/exe") ?? Data()

    @Test func readsTheLibrariesAndGlibcVersionsOfAnExecutable() throws {
        let dependencies = try ELFDependencies(elf: Self.ownExecutable)
        #expect(dependencies.machine == .x86_64)
        #expect(dependencies.neededLibraries.contains("libc.so.6"))
        #expect(dependencies.nonGlibcLibraries.contains("libswiftCore.so"))
        let glibc = try #require(dependencies.requiredGlibc)
        #expect(glibc >= ELFDependencies.GlibcVersion(2, 17))
        #expect(dependencies.glibcVersions == dependencies.glibcVersions.sorted())
    }

    @Test func symbolVersionsBecomeTheirMajorAndMinor() {
        #expect(ELFDependencies.GlibcVersion(symbolVersion: "GLIBC_2.2.5") == .init(2, 2))
        #expect(ELFDependencies.GlibcVersion(symbolVersion: "GLIBC_2.34") == .init(2, 34))
        #expect(ELFDependencies.GlibcVersion(symbolVersion: "GLIBC_PRIVATE") == nil)
        #expect(ELFDependencies.GlibcVersion(symbolVersion: "GCC_3.0") == nil)
        #expect(ELFDependencies.GlibcVersion(2, 9) < .init(2, 17))
    }

    @Test func aFileThatIsNotAWholeElfIsRefusedWithoutACrash() {
        #expect(throws: ELFDependencies.Failure.self) { try ELFDependencies(elf: Data("#!/bin/sh\n".utf8)) }
        for length in [64, 4096, Self.ownExecutable.count / 2] {
            #expect(throws: ELFDependencies.Failure.self) { try ELFDependencies(elf: Self.ownExecutable.prefix(length)) }
        }
    }

    @Test func aBinaryLoadingSharedLibrariesBesidesGlibcIsNotPackaged() {
        #expect {
            _ = try ToolWheel(binary: Self.ownExecutable, readme: "# pretix-forge\n",
                              licenses: BundledLicenses(expression: "Apache-2.0", files: []), timestamp: DistributionBuilder.defaultTimestamp)
        } throws: { error in
            let message = (error as? ForgeError)?.description ?? ""
            return message.contains("libswiftCore.so") && message.contains("make dist")
        }
    }
}
