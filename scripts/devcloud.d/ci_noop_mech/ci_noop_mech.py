"""ML2 mechanism driver for the devcloud: binds every port, no L2 agent.

Neutron runs without agents here, so nothing would bind ports and nova would fail
to boot a server on a tenant network with PortBindingFailed. This driver claims
every segment (vif_type=ovs, status ACTIVE); nova's fake virt driver never plugs
anything, so the binding only has to look valid to the API.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class NoopMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
