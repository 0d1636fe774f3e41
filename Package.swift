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
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // 2.1.1 with a patch that keeps Foundation, and ICU's data, out of the static binary
        // (Vendor/swift-mustache/README.md).
        .package(path: "Vendor/swift-mustache"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // System C libraries, linked through pkg-config (Debian: libarchive-dev, libssl-dev,
        // libcurl4-openssl-dev). The wheel's static build links archives of libarchive and libcurl
        // built from Debian's source with only what the tool uses (scripts/static-link.sh).
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
        // `webhook send`: one POST over HTTP(S), TLS through the same OpenSSL.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // XML for the SVG logo check (Debian: libexpat1-dev); its module map links the archive.
        .systemLibrary(name: "CExpat"),
        // libdeflate, for the sdist's gzip stream: twice as fast as zlib at its fastest level.
        .systemLibrary(name: "CDeflate"),
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
                "CDeflate",
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
                "CCurl",
                "PretixForge",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
