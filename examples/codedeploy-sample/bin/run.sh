#!/bin/sh
echo "sample app running"
