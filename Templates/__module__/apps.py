from django.utils.translation import gettext_lazy

from . import __version__

try:
    from pretix.base.plugins import PluginConfig
except ImportError:  # pragma: no cover - only without pretix, where this module is never loaded
    raise RuntimeError('Please use pretix 2.7 or above to run this plugin!')


class PluginApp(PluginConfig):
    default = True
    name = '<% package.module %>'
    verbose_name = <% py(provider.verbose_name) %>

    class PretixPluginMeta:
        name = <% py(provider.verbose_name) %>
        author = <% py(package.author) %>
        description = gettext_lazy('Accept crypto payments through the NodeRails hosted checkout.')
        visible = True
        version = __version__
        category = 'PAYMENT'
        compatibility = 'pretix>=<% package.pretix_min_version %>'
        settings_links = [
            ((gettext_lazy('Payment'), <% py(provider.verbose_name) %>), 'control:event.settings.payment.provider',
             {'provider': '<% provider.identifier %>'}),
        ]
        navigation_links = []

    def ready(self):
        from . import signals  # NOQA
