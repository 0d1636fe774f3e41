// swift-tools-version: 6.1
import PackageDescription

// The tool's code imports FoundationEssentials, never Foundation: one reference to the rest of
// Foundation (FileHandle, Process, NSLock, String(format:), …) links all of it into the static
// binary, and ICU's data with it, tens of MB. Without this feature a dependency's `import
// Foundation` would make those members visible here too, and such a reference would go unnoticed.
let foundationEssentialsOnly: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "pretix-forge",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pretix-forge", targets: ["pretix-forge"]),
        .library(name: "PretixForge", targets: ["PretixForge"]),
    ],
    // `webhook send` (HTTPS through SwiftNIO, BoringSSL and AsyncHTTPClient) is most of a cold
    // build's compile steps and is needed by no other command: only `make dist` (the wheel) enables
    // it, so `make run` builds without them. `swift build --traits WebhookSend` adds it to any build.
    traits: [
        .trait(name: "WebhookSend", description: "`pretix-forge webhook send`: POST a signed delivery over HTTP(S)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // 2.1.1 with a patch that keeps Foundation, and ICU's data, out of the static binary
        // (Vendor/swift-mustache/README.md).
        .package(path: "Vendor/swift-mustache"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // `webhook send` (trait WebhookSend): an HTTP client that links statically (Foundation's
        // URLSession needs libcurl).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // System C libraries, linked through pkg-config (Debian: libarchive-dev, libssl-dev).
        .systemLibrary(
            name: "CArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // XML for the SVG logo check (Debian: libexpat1-dev); its module map links the archive.
        .systemLibrary(name: "CExpat"),
        // Small C helpers the Swift standard library does not expose.
        .target(name: "CSupport"),
        // Turns Templates/, the default config and the shared vectors into Swift source,
        // so the binary works when copied alone.
        .executableTarget(name: "embed-resources"),
        .plugin(
            name: "EmbedResources",
            capability: .buildTool(),
            dependencies: ["embed-resources"]
        ),
        .target(
            name: "PretixForge",
            dependencies: [
                "CArchive",
                "CExpat",
                "COpenSSL",
                "CSupport",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: foundationEssentialsOnly,
            plugins: ["EmbedResources"]
        ),
        .executableTarget(
            name: "pretix-forge",
            dependencies: [
                "PretixForge",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client", condition: .when(traits: ["WebhookSend"])),
            ],
            swiftSettings: foundationEssentialsOnly
        ),
        .testTarget(
            name: "PretixForgeTests",
            dependencies: [
                "PretixForge",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["Golden"]
        ),
    ]
)
