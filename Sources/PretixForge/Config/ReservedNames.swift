/// Names a plugin must not take. Its module: importing it would shadow the standard library
/// (Python 3.11 `sys.stdlib_module_names`), Django, pretix or one of pretix's dependencies, and
/// as a Django app label it must differ from every app pretix installs. Its payment provider
/// identifier: pretix's own providers have theirs.
enum ReservedNames {
    static let stdlib: Set<String> = [
        "abc", "aifc", "antigravity", "argparse", "array", "ast", "asynchat", "asyncio",
        "asyncore", "atexit", "audioop", "base64", "bdb", "binascii", "bisect", "builtins",
        "bz2", "cProfile", "calendar", "cgi", "cgitb", "chunk", "cmath", "cmd",
        "code", "codecs", "codeop", "collections", "colorsys", "compileall", "concurrent", "configparser",
        "contextlib", "contextvars", "copy", "copyreg", "crypt", "csv", "ctypes", "curses",
        "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis", "distutils", "doctest",
        "email", "encodings", "ensurepip", "enum", "errno", "faulthandler", "fcntl", "filecmp",
        "fileinput", "fnmatch", "fractions", "ftplib", "functools", "gc", "genericpath", "getopt",
        "getpass", "gettext", "glob", "graphlib", "grp", "gzip", "hashlib", "heapq",
        "hmac", "html", "http", "idlelib", "imaplib", "imghdr", "imp", "importlib",
        "inspect", "io", "ipaddress", "itertools", "json", "keyword", "lib2to3", "linecache",
        "locale", "logging", "lzma", "mailbox", "mailcap", "marshal", "math", "mimetypes",
        "mmap", "modulefinder", "msilib", "msvcrt", "multiprocessing", "netrc", "nis", "nntplib",
        "nt", "ntpath", "nturl2path", "numbers", "opcode", "operator", "optparse", "os",
        "ossaudiodev", "pathlib", "pdb", "pickle", "pickletools", "pipes", "pkgutil", "platform",
        "plistlib", "poplib", "posix", "posixpath", "pprint", "profile", "pstats", "pty",
        "pwd", "py_compile", "pyclbr", "pydoc", "pydoc_data", "pyexpat", "queue", "quopri",
        "random", "re", "readline", "reprlib", "resource", "rlcompleter", "runpy", "sched",
        "secrets", "select", "selectors", "shelve", "shlex", "shutil", "signal", "site",
        "smtpd", "smtplib", "sndhdr", "socket", "socketserver", "spwd", "sqlite3", "sre_compile",
        "sre_constants", "sre_parse", "ssl", "stat", "statistics", "string", "stringprep", "struct",
        "subprocess", "sunau", "symtable", "sys", "sysconfig", "syslog", "tabnanny", "tarfile",
        "telnetlib", "tempfile", "termios", "textwrap", "this", "threading", "time", "timeit",
        "tkinter", "token", "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "tty",
        "turtle", "turtledemo", "types", "typing", "unicodedata", "unittest", "urllib", "uu",
        "uuid", "venv", "warnings", "wave", "weakref", "webbrowser", "winreg", "winsound",
        "wsgiref", "xdrlib", "xml", "xmlrpc", "zipapp", "zipfile", "zipimport", "zlib",
        "zoneinfo",
    ]

    /// pretix itself, what packaging tools import, and the names of folders in the plugin's tree.
    static let pretixEcosystem: Set<String> = [
        "pretix", "urllib3", "pretix_noderails_tests", "tests", "test", "setuptools", "pip", "pkg_resources",
        "templates", "locale",
    ]

    /// The label of every app pretix puts into INSTALLED_APPS, and the app: a plugin's module
    /// is its Django app label, and Django refuses to start with two apps of one label. Read from
    /// pretix 2024.7.0 and 2026.8.0, the oldest and newest pretix the plugin is tested on.
    static let pretixAppLabels: [String: String] = [
        "auth": "django.contrib.auth", "contenttypes": "django.contrib.contenttypes", "sessions": "django.contrib.sessions",
        "messages": "django.contrib.messages", "humanize": "django.contrib.humanize", "staticfiles": "django.contrib.staticfiles",
        "postgres": "django.contrib.postgres", "forms": "django.forms",
        "pretixbase": "pretix.base", "pretixcontrol": "pretix.control", "pretixpresale": "pretix.presale",
        "pretixmultidomain": "pretix.multidomain", "pretixapi": "pretix.api", "pretixhelpers": "pretix.helpers",
        "banktransfer": "pretix.plugins.banktransfer", "stripe": "pretix.plugins.stripe", "paypal": "pretix.plugins.paypal",
        "paypal2": "pretix.plugins.paypal2", "ticketoutputpdf": "pretix.plugins.ticketoutputpdf",
        "sendmail": "pretix.plugins.sendmail", "statistics": "pretix.plugins.statistics", "reports": "pretix.plugins.reports",
        "checkinlists": "pretix.plugins.checkinlists", "pretixdroid": "pretix.plugins.pretixdroid",
        "badges": "pretix.plugins.badges", "manualpayment": "pretix.plugins.manualpayment",
        "returnurl": "pretix.plugins.returnurl", "autocheckin": "pretix.plugins.autocheckin",
        "webcheckin": "pretix.plugins.webcheckin",
        "rest_framework": "rest_framework", "djangoformsetjs": "djangoformsetjs", "compressor": "compressor",
        "bootstrap3": "bootstrap3", "django_countries": "django_countries", "oauth2_provider": "oauth2_provider",
        "phonenumber_field": "phonenumber_field", "statici18n": "statici18n", "django_querytagger": "django_querytagger",
        "django_filters": "django_filters", "django_markup": "django_markup", "django_otp": "django_otp",
        "otp_totp": "django_otp.plugins.otp_totp", "otp_static": "django_otp.plugins.otp_static", "hijack": "hijack",
        "localflavor": "localflavor", "django_extensions": "django_extensions",
    ]

    /// The modules pretix's requirements install, and their distributions: a plugin module of
    /// the same name would shadow one. From the Requires-Dist of pretix 2024.7.0 and 2026.8.0
    /// (extras left out), each distribution mapped to the top-level modules it installs.
    static let pretixDependencies: [String: String] = [
        "arabic_reshaper": "arabic-reshaper", "babel": "babel", "bs4": "BeautifulSoup4", "bleach": "bleach",
        "celery": "celery", "chardet": "chardet", "cryptography": "cryptography", "css_inline": "css-inline",
        "defusedcsv": "defusedcsv", "dj_static": "dj-static", "dns": "dnspython", "django": "Django",
        "bootstrap3": "django-bootstrap3", "compressor": "django-compressor", "django_countries": "django-countries",
        "django_filters": "django-filter", "djangoformsetjs": "django-formset-js-improved", "formtools": "django-formtools",
        "hierarkey": "django-hierarkey", "hijack": "django-hijack", "i18nfield": "django-i18nfield",
        "django_libsass": "django-libsass", "localflavor": "django-localflavor", "django_markup": "django-markup",
        "oauth2_provider": "django-oauth-toolkit", "django_otp": "django-otp", "phonenumber_field": "django-phonenumber-field",
        "django_querytagger": "django-querytagger", "django_redis": "django-redis", "django_scopes": "django-scopes",
        "statici18n": "django-statici18n", "rest_framework": "djangorestframework", "drf_ujson": "drf-ujson2",
        "geoip2": "geoip2", "importlib_metadata": "importlib-metadata", "isoweek": "isoweek", "jsonschema": "jsonschema",
        "kombu": "kombu", "sass": "libsass", "sassutils": "libsass", "pysassc": "libsass", "lxml": "lxml",
        "markdown": "markdown", "mt940": "mt-940", "oauthlib": "oauthlib", "openpyxl": "openpyxl", "packaging": "packaging",
        "paypalrestsdk": "paypalrestsdk", "paypalcheckoutsdk": "paypal-checkout-serversdk", "jwt": "PyJWT",
        "phonenumbers": "phonenumberslite", "PIL": "Pillow", "pretix_plugin_build": "pretix-plugin-build", "google": "protobuf",
        "psycopg2": "psycopg2-binary", "pycountry": "pycountry", "pycparser": "pycparser", "Crypto": "pycryptodome",
        "pypdf": "pypdf", "bidi": "python-bidi", "dateutil": "python-dateutil", "pytz": "pytz",
        "pytz_deprecation_shim": "pytz-deprecation-shim", "pyuca": "pyuca", "qrcode": "qrcode", "redis": "redis",
        "reportlab": "reportlab", "requests": "requests", "sentry_sdk": "sentry-sdk", "sepaxml": "sepaxml",
        "sepadd": "sepaxml", "slimit": "slimit", "static": "static3", "stripe": "stripe", "text_unidecode": "text-unidecode",
        "tlds": "tlds", "tqdm": "tqdm", "ua_parser": "ua-parser", "vat_moss": "vat-moss-forked", "vobject": "vobject",
        "webauthn": "webauthn", "zeep": "zeep",
    ]

    /// The payment providers pretix registers itself, and the app each comes with: a provider
    /// keeps its settings under `payment_<identifier>_`, so one identifier for two would have
    /// them share settings. Every `identifier` of a payment provider in pretix 2024.7.0 and 2026.8.0.
    static let pretixPaymentProviders: [String: String] = [
        "free": "pretix.base", "boxoffice": "pretix.base", "manual": "pretix.base", "offsetting": "pretix.base",
        "giftcard": "pretix.base", "banktransfer": "pretix.plugins.banktransfer",
        "paypal": "pretix.plugins.paypal2", "paypal_apm": "pretix.plugins.paypal2", "paypal_settings": "pretix.plugins.paypal2",
        "stripe": "pretix.plugins.stripe", "stripe_settings": "pretix.plugins.stripe", "stripe_affirm": "pretix.plugins.stripe",
        "stripe_alipay": "pretix.plugins.stripe", "stripe_bancontact": "pretix.plugins.stripe", "stripe_eps": "pretix.plugins.stripe",
        "stripe_giropay": "pretix.plugins.stripe", "stripe_ideal": "pretix.plugins.stripe", "stripe_klarna": "pretix.plugins.stripe",
        "stripe_mobilepay": "pretix.plugins.stripe", "stripe_multibanco": "pretix.plugins.stripe",
        "stripe_pay_by_bank": "pretix.plugins.stripe", "stripe_paypal": "pretix.plugins.stripe",
        "stripe_promptpay": "pretix.plugins.stripe", "stripe_przelewy24": "pretix.plugins.stripe",
        "stripe_revolut_pay": "pretix.plugins.stripe", "stripe_sepa_debit": "pretix.plugins.stripe",
        "stripe_sofort": "pretix.plugins.stripe", "stripe_swish": "pretix.plugins.stripe", "stripe_twint": "pretix.plugins.stripe",
        "stripe_wechatpay": "pretix.plugins.stripe", "stripe_wero": "pretix.plugins.stripe",
    ]

    /// Python 3.11 `keyword.kwlist` plus the soft keywords.
    static let pythonKeywords: Set<String> = [
        "False", "None", "True", "and", "as", "assert", "async", "await",
        "break", "class", "continue", "def", "del", "elif", "else", "except",
        "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
        "while", "with", "yield", "_", "case", "match",
    ]
}
