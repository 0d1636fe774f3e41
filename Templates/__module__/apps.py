from django.utils.translation import gettext_lazy

from .conf import IDENTIFIER, MODULE, PRETIX_MIN_VERSION, VERSION
from .texts import AUTHOR, SUMMARY, VERBOSE_NAME

try:
    from pretix.base.plugins import PluginConfig
except ImportError:  # pragma: no cover - only without pretix, where this module is never loaded
    raise RuntimeError('Please use pretix 2.7 or above to run this plugin!')


class PluginApp(PluginConfig):
    default = True
    name = MODULE
    verbose_name = VERBOSE_NAME

    class PretixPluginMeta:
        name = VERBOSE_NAME
        author = AUTHOR
        description = SUMMARY
        visible = True
        version = VERSION
        category = 'PAYMENT'
        compatibility = 'pretix>=' + PRETIX_MIN_VERSION
        settings_links = [
            ((gettext_lazy('Payment'), VERBOSE_NAME), 'control:event.settings.payment.provider',
             {'provider': IDENTIFIER}),
        ]
        navigation_links = []

    def ready(self):
        from . import signals  # NOQA
