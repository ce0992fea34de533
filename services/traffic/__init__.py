"""TrafficRouter: load balancer target groups and the weight of each instance in them."""
