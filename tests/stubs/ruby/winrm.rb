# Test stand-in for the winrm gem, which Debian's vagrant package does not ship: just the names
# that vagrant's WinRM communicator refers to when it is loaded, so `vagrant validate` can load it.
class HTTPClient; class KeepAliveDisconnected < StandardError; end; end
module WinRM
  class WinRMHTTPTransportError < StandardError; end
  class WinRMAuthorizationError < StandardError; end
  class WinRMWSManFault < StandardError; end
end
