from django.utils.translation import gettext_lazy

from . import __version__
from .texts import AUTHOR, SUMMARY, VERBOSE_NAME

try:
    from pretix.base.plugins import PluginConfig
except ImportError:  # pragma: no cover - only without pretix, where this module is never loaded
    raise RuntimeError('Please use pretix 2.7 or above to run this plugin!')


class PluginApp(PluginConfig):
    default = True
    name = '<% package.module %>'
    verbose_name = VERBOSE_NAME

    class PretixPluginMeta:
        name = VERBOSE_NAME
        author = AUTHOR
        description = SUMMARY
        visible = True
        version = __version__
        category = 'PAYMENT'
        compatibility = 'pretix>=<% package.pretix_min_version %>'
        settings_links = [
            ((gettext_lazy('Payment'), VERBOSE_NAME), 'control:event.settings.payment.provider',
             {'provider': '<% provider.identifier %>'}),
        ]
        navigation_links = []

    def ready(self):
        from . import signals  # NOQA
