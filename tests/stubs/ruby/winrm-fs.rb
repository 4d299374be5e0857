# Test stand-in: required by vagrant's WinRM plugin; see winrm.rb.
