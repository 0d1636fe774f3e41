// swift-tools-version: 6.0
import PackageDescription

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
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // `webhook send`: an HTTP client that links statically (Foundation's URLSession needs libcurl).
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
                "COpenSSL",
                "CSupport",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            plugins: ["EmbedResources"]
        ),
        .executableTarget(
            name: "pretix-forge",
            dependencies: [
                "PretixForge",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
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
