import Foundation
import Testing
@testable import PretixForge

/// The parts of `pretix-forge demo` that decide before anything runs, and the child-process shim.
/// Running the demo itself is Tests/Demo's job.
@Suite("Demo: environment, checks, child processes")
struct DemoTests {
    @Test func driverEnvironmentDropsWhatWouldRedirectPretix() {
        let user = ["PATH": "/usr/bin", "PRETIX_DATABASE_BACKEND": "postgresql", "PRETIX_CONFIG_FILE": "/etc/pretix.cfg",
                    "DJANGO_SETTINGS_MODULE": "mysite.settings", "PYTHONPATH": "/somewhere", "HTTP_PROXY": "http://proxy:3128",
                    "NO_PROXY": "intranet.example"]
        let environment = DemoWorkspace.driverEnvironment(user, runtime: "/ws/runtime", temporary: "/ws/tmp")
        #expect(environment.keys.filter { $0.hasPrefix("PRETIX_") }.isEmpty)
        #expect(environment["DJANGO_SETTINGS_MODULE"] == nil)
        #expect(environment["PYTHONPATH"] == "/ws/runtime")
        #expect(environment["TMPDIR"] == "/ws/tmp")
        #expect(environment["PATH"] == "/usr/bin" && environment["HTTP_PROXY"] == "http://proxy:3128")
        #expect(environment["NO_PROXY"] == "127.0.0.1,localhost,intranet.example")
        #expect(environment["no_proxy"] == "127.0.0.1,localhost")
    }

    @Test func specListsLanguagesEnglishFirstAndUsesSnakeCase() throws {
        var config = try ConfigLoader.loadDefault()
        config.branding.texts["confirm_heading"]?["fr"] = "Payez"
        let distribution = try Pipeline.distribution(config, tree: try Pipeline.render(config), environment: [:])
        let spec = DemoSpec(config: config, workspace: URL(fileURLWithPath: "/ws"), sdist: URL(fileURLWithPath: "/ws/dist/\(distribution.sdistName)"),
                            port: 8000, compressFolder: "/cache/compress", browser: nil)
        #expect(spec.languages == ["en", "de", "de-informal", "fr"])
        let json = try #require(try JSONSerialization.jsonObject(with: spec.json()) as? [String: Any])
        #expect(json["webhook_path"] == nil && (json["provider"] as? [String: Any])?["webhook_path"] as? String == "noderails")
        #expect(json["parent_pid"] as? Int == Int(getpid()))
        #expect(json["screenshots"] == nil)
    }

    @Test func portInUseIsNamed() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let error = #expect(throws: ForgeError.self) { try LoopbackPort.ensureFree(port) }
        #expect(error?.description.contains("--port: port \(port) on 127.0.0.1 is in use") == true)
        close(listener)
        try LoopbackPort.ensureFree(port)
        #expect(throws: ForgeError.self) { try LoopbackPort.ensureFree(0) }
    }

    @Test func screenshotsNeedChromiumOnPathAndAShortTemporaryFolder() throws {
        let empty = try Repo.temporaryDirectory()
        let missing = #expect(throws: ForgeError.self) { try Browser.locate(environment: ["PATH": empty.path]) }
        #expect(missing?.description.contains("Chromium (chromium) and chromedriver is not on PATH") == true)
        #expect(missing?.description.contains("apt-get install chromium chromium-driver") == true)

        for name in ["chromium", "chromedriver"] {
            let program = empty.appendingPathComponent(name)
            try Data("#!/bin/sh\n".utf8).write(to: program)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program.path)
        }
        let found = try Browser.locate(environment: ["PATH": empty.path, "TMPDIR": "/tmp"])
        #expect(found.chromium == empty.appendingPathComponent("chromium").path)
        let deep = "/" + String(repeating: "d", count: Browser.socketPathLimit - Browser.socketPathBeyondTMPDIR)
        let tooLong = #expect(throws: ForgeError.self) { try Browser.locate(environment: ["PATH": empty.path, "TMPDIR": deep]) }
        #expect(tooLong?.description.contains("TMPDIR: the temporary folder's path is too long for Chromium") == true)
        _ = try Browser.locate(environment: ["PATH": empty.path, "TMPDIR": String(deep.dropLast())])
    }

    @Test func cacheFolderFollowsXDGThenHome() throws {
        #expect(try PretixEnvironment.cacheFolder(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]).path == "/c/pretix-forge")
        #expect(try PretixEnvironment.cacheFolder(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/h"]).path == "/h/.cache/pretix-forge")
        #expect(throws: ForgeError.self) { try PretixEnvironment.cacheFolder(environment: [:]) }
    }

    @Test func pinComesFromTheEmbeddedRequirements() throws {
        let onDisk = try String(contentsOf: Repo.url("Demo/requirements.txt"), encoding: .utf8)
        #expect(onDisk == PretixEnvironment.requirements)
        #expect(onDisk.contains("\npretix==\(PretixEnvironment.pinnedPretixVersion)\n"))
    }

    @Test func childRunsInItsOwnGroupWithDefaultSignalsAndStopsWithIt() throws {
        // Ignored and blocked signals survive an exec unless the shim resets them.
        signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, SIG_DFL) }
        let child = try ChildProcess("/bin/sleep", ["30"], environment: [:])
        defer {
            child.signalGroup(SIGKILL)
            while child.poll() == nil { usleep(10_000) }
        }
        let status = try String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)
        let stat = try String(contentsOfFile: "/proc/\(child.pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        #expect(pid_t(fields[2]) == child.pid, "not the leader of a process group of its own")
        // Signals 32 and 33 belong to glibc (thread cancellation), which sets them up itself.
        let glibcReserved: UInt64 = 1 << 31 | 1 << 32
        #expect(mask("SigIgn", in: status) & ~glibcReserved == 0, "an ignored signal survived the exec")
        #expect(mask("SigBlk", in: status) & ~glibcReserved == 0, "a blocked signal survived the exec")
        #expect(child.groupIsAlive)
        child.signalGroup(SIGTERM)
        var result: Int32?
        for _ in 0..<500 where result == nil {
            result = child.poll()
            usleep(10_000)
        }
        #expect(result == 128 + SIGTERM)
    }

    private func mask(_ name: String, in status: String) -> UInt64 {
        let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
        return UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? .max
    }

    @Test func aProgramThatCannotStartIsAnErrorNotAnExitStatus() {
        let error = #expect(throws: ForgeError.self) { try ChildProcess("/nonexistent/python", [], environment: [:]) }
        #expect(error?.description.contains("/nonexistent/python: error: cannot start it: No such file or directory") == true)
    }
}
