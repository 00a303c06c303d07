"""What the appliance and home share: the wire protocol, envelope signing, key text."""
