module forge.lan/tools/agent

go 1.22
